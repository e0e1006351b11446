"""The Context handed to commands and hooks: configuration, plugins, state and locks in one place."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ws import locking
from ws.config import Config, load_config
from ws.errors import UsageError
from ws.log import get_logger
from ws.plugins import PluginManager
from ws.types import NetworkAttachment, ProvisionFile, Workspace

if TYPE_CHECKING:
    from ws.provision import Bundle, LoginUser


@dataclass(frozen=True)
class StateDir:
    """Where ws keeps its state (``state_dir`` of the configuration)."""

    root: Path


@dataclass
class Context:
    config: Config
    plugins: PluginManager
    state: StateDir
    log: Any
    _deferred: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def workspace(self, name: str) -> Workspace:
        """The resolved workspace ``name`` or a usage error listing the configured ones."""
        try:
            return self.config.workspaces[name]
        except KeyError:
            known = ", ".join(sorted(self.config.workspaces)) or "none"
            raise UsageError(f"no workspace {name!r} in {self.config.source} (configured: {known})") from None

    def lock(self, kind: str, name: str, timeout: float = locking.DEFAULT_TIMEOUT) -> AbstractContextManager[None]:
        """Exclusive flock of one resource (``workspace``, ``image``, ``network``, ``backend``)."""
        return locking.lock(self.state.root, kind, name, timeout=timeout)

    def backend(self, hook: str, workspace: Workspace, **kwargs: Any) -> Any:
        """Call a backend hook on the one plugin providing ``workspace.type``."""
        return self.plugins.call_backend(hook, workspace.type, workspace=workspace, ctx=self, **kwargs)

    def defer(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the command has finished its work (every workspace it brings up is up):
        for optional background work (a backend's instance made ahead of time) that would otherwise compete
        with workspaces still starting. The callback takes its own locks; it is skipped if ws is killed."""
        self._deferred.append(callback)

    def run_deferred(self) -> None:
        """Run the deferred callbacks (the CLI does after each command); a failure is only logged."""
        while self._deferred:
            callback = self._deferred.pop(0)
            try:
                callback()
            except Exception as exc:  # noqa: BLE001 - optional work must not fail the finished command
                self.log.warning("deferred work failed", error=str(exc))

    def attach_network(self, workspace: Workspace) -> NetworkAttachment:
        """Ask the plugin owning the workspace's network to bring it up and say where to plug in."""
        return self.plugins.call_network("ws_network_attach", workspace.network, workspace=workspace, ctx=self)

    @functools.cached_property
    def login_user(self) -> LoginUser:
        """The guest login user (``[user]``, else the sudo caller), resolved once per command."""
        from ws.provision import resolve_login_user

        return resolve_login_user(self.config.core.user, os.environ)

    def provisioning(self, workspace: Workspace, attachment: NetworkAttachment) -> Bundle:
        """The workspace's provisioning bundle: core's files, first-boot steps and mounts plus every plugin's
        ``ws_provision_files``. Computing it has no side effects; backends deliver it before first boot."""
        from ws.provision import build_bundle

        extra: list[ProvisionFile] = []
        for contribution in self.plugins.call_all(
            "ws_provision_files", workspace=workspace, attachment=attachment, ctx=self
        ):
            extra.extend(contribution or ())
        return build_bundle(workspace, attachment, self.config.core, self.login_user, extra)


def load_context(config_path: Path | None, plugins: PluginManager, environ: dict[str, str] | None = None) -> Context:
    """Load the configuration (validated with the help of the loaded plugins) into a Context."""
    config = load_config(config_path, plugins, os.environ if environ is None else environ)
    return Context(config=config, plugins=plugins, state=StateDir(config.core.state_dir), log=get_logger())
