"""The Context handed to commands and hooks: configuration, plugins, state, locks and progress in one place.

It implements the :class:`ws.api.Context` protocol plugins program against, and hands core the typed
calls into plugins (:mod:`ws.plugins.dispatch`).
"""

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
from ws.errors import ConfigError, ConfigProblem, WsError, unknown_workspace
from ws.log import get_logger
from ws.plugins import PluginManager, Registry
from ws.plugins.dispatch import AllPlugins, Backend, NetworkOwner, define_network
from ws.types import Network, NetworkAttachment, Workspace

if TYPE_CHECKING:
    from ws.provision import Bundle, LoginUser


@dataclass(frozen=True)
class StateDir:
    """Where ws keeps its state (``state_dir`` of the configuration)."""

    root: Path


def _silent(_message: str) -> None:
    return None


@dataclass
class Context:
    config: Config
    plugins: PluginManager
    state: StateDir
    log: Any
    report_progress: Callable[[str], None] = field(default=_silent, repr=False)
    """Where :meth:`progress` messages go (the CLI prints them on stderr)."""
    _deferred: list[Callable[[], None]] = field(default_factory=list, repr=False)
    done: set[str] = field(default_factory=set, repr=False)
    """Work this command has done and need not repeat (the sandbox network made sure of, by bridge): one
    command lasts seconds, so what it checked stays checked for the rest of it."""

    @property
    def registry(self) -> Registry:
        return self.plugins.registry

    def workspace(self, name: str) -> Workspace:
        """The resolved workspace ``name`` or a usage error listing the configured ones."""
        try:
            return self.config.workspaces[name]
        except KeyError:
            raise unknown_workspace(name, self.config.workspaces, self.config.source) from None

    def progress(self, message: str) -> None:
        """One line for the user about a long operation (backends never print themselves)."""
        self.report_progress(message)

    def lock(self, kind: str, name: str, timeout: float = locking.DEFAULT_TIMEOUT) -> AbstractContextManager[None]:
        """Exclusive flock of one resource (``workspace``, ``network``, ``image``, ...).

        Lock order, so two ws processes can never deadlock: a workspace lock first, then network locks, then
        the leases and image locks; nothing takes a workspace lock while holding a network lock.
        """
        return locking.lock(self.state.root, kind, name, timeout=timeout)

    def backend(self, workspace: Workspace) -> Backend:
        """The backend hooks of ``workspace``, called on the one plugin providing its type."""
        return Backend(self.registry, workspace, self)

    def network(self, name: str) -> NetworkOwner:
        """The hooks of network ``name``, called on the one plugin owning it."""
        return NetworkOwner(self.registry, self.network_record(name), self)

    def network_record(self, name: str) -> Network:
        """The network as its owner defines it: from the configuration, or defined now for a network no
        workspace uses (``ws network up vpn`` before any service workspace exists)."""
        if name in self.config.networks:
            return self.config.networks[name]
        try:
            return define_network(self.registry, name, self.config.core, self.config.sections)
        except (ValueError, WsError) as exc:
            if isinstance(exc, WsError) and exc.exit_code == 3:
                raise
            problem = ConfigProblem("", f"network {name!r} cannot be defined: {exc}")
            raise ConfigError(self.config.source, [problem]) from None

    @property
    def all_plugins(self) -> AllPlugins:
        """Event and contribution hooks, called on every plugin."""
        return AllPlugins(self.registry, self)

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

    @functools.cached_property
    def login_user(self) -> LoginUser:
        """The guest login user (``[user]``, else the sudo caller), resolved once per command."""
        from ws.provision import resolve_login_user

        return resolve_login_user(self.config.core.user, os.environ)

    def provisioning(self, workspace: Workspace, attachment: NetworkAttachment) -> Bundle:
        """The workspace's provisioning bundle: core's files, first-boot steps and mounts plus every plugin's
        ``ws_provision_files``. Computing it has no side effects; backends deliver it before first boot."""
        from ws.provision import build_bundle

        extra = self.all_plugins.provision_files(workspace, attachment)
        return build_bundle(workspace, attachment, self.config.core, self.login_user, extra)


def load_context(config_path: Path | None, plugins: PluginManager, environ: dict[str, str] | None = None) -> Context:
    """Load the configuration (validated with the help of the loaded plugins) into a Context."""
    config = load_config(config_path, plugins.registry, os.environ if environ is None else environ)
    return Context(config=config, plugins=plugins, state=StateDir(config.core.state_dir), log=get_logger())
