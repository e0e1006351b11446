"""Typed calls from core to plugins: one method per hook, so no call site names a hook as a string.

:class:`Backend` is bound to one workspace and calls its type's owner; :class:`NetworkOwner` is bound to
one network record and calls its owner; :class:`AllPlugins` calls event and contribution hooks on every
plugin. The Context hands them out (``ctx.backend(workspace)``, ``ctx.network(name)``, ``ctx.all_plugins``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ws import hookspecs

if TYPE_CHECKING:
    from ws.plugins.registry import Registry
    from ws.preparation import CreateRequest
    from ws.types import (
        DoctorCheck,
        MaintenanceResult,
        NetnsRef,
        Network,
        NetworkAttachment,
        NetworkStatus,
        ProvisionFile,
        Workspace,
        WorkspaceStatus,
    )


@dataclass(frozen=True)
class Backend:
    """The backend hooks of ``workspace``, dispatched to the plugin providing its type."""

    registry: Registry
    workspace: Workspace
    ctx: Any

    def _call(self, hook: Any, **kwargs: Any) -> Any:
        return self.registry.call_backend(hook, self.workspace.type, workspace=self.workspace, ctx=self.ctx, **kwargs)

    def create(self, request: CreateRequest) -> object | None:
        return self._call(hookspecs.ws_create, request=request)

    def start(self, handle: object | None) -> None:
        self._call(hookspecs.ws_start, handle=handle)

    def stop(self) -> None:
        self._call(hookspecs.ws_stop)

    def destroy(self, purge: bool) -> None:
        self._call(hookspecs.ws_destroy, purge=purge)

    def status(self) -> WorkspaceStatus:
        return self._call(hookspecs.ws_status)

    def exec(self, command: list[str], interactive: bool) -> int:
        return self._call(hookspecs.ws_exec, command=command, interactive=interactive)

    def logs(self, follow: bool) -> int:
        return self._call(hookspecs.ws_logs, follow=follow)

    def netns(self) -> NetnsRef | None:
        return self._call(hookspecs.ws_instance_netns)


@dataclass(frozen=True)
class NetworkOwner:
    """The hooks of one network, dispatched to the plugin owning its name."""

    registry: Registry
    network: Network
    ctx: Any

    def _call(self, hook: Any, **kwargs: Any) -> Any:
        return self.registry.call_network(hook, self.network.name, network=self.network, ctx=self.ctx, **kwargs)

    def up(self) -> list[str]:
        """The owner's up, then the network's agent (:mod:`ws.agents`) unless it runs."""
        changes = list(self._call(hookspecs.ws_network_up) or [])
        if self.network.agent is None:
            return changes
        from ws import agents

        return changes + agents.ensure_running(self.network, self.ctx.state.root, self.ctx.config.file)

    def down(self) -> list[str]:
        """The agent stops first (it uses what the owner's down removes)."""
        changes = []
        if self.network.agent is not None:
            from ws import agents

            changes = agents.stop(self.network, self.ctx.state.root)
        return changes + list(self._call(hookspecs.ws_network_down) or [])

    def status(self) -> NetworkStatus:
        return self._call(hookspecs.ws_network_status)

    def attach(self, workspace: Workspace) -> NetworkAttachment:
        return self._call(hookspecs.ws_network_attach, workspace=workspace)

    def detach(self, workspace: Workspace) -> None:
        if self.registry.implements(hookspecs.ws_network_detach, self.network.name):
            self._call(hookspecs.ws_network_detach, workspace=workspace)

    def describe(self, workspace: Workspace) -> NetworkAttachment:
        return self._call(hookspecs.ws_network_describe, workspace=workspace)

    def maintain(self, force: bool) -> MaintenanceResult:
        return self._call(hookspecs.ws_network_maintain, force=force)


def define_network(registry: Registry, name: str, core: Any, sections: Any) -> Network:
    """The owner's record of network ``name`` from the configuration."""
    return registry.call_network(hookspecs.ws_network_define, name, name=name, core=core, sections=sections)


@dataclass(frozen=True)
class AllPlugins:
    """Event and contribution hooks, called on every plugin in registration order."""

    registry: Registry
    ctx: Any

    def provision_files(self, workspace: Workspace, attachment: NetworkAttachment) -> list[ProvisionFile]:
        results = self.registry.call_all(
            hookspecs.ws_provision_files, workspace=workspace, attachment=attachment, ctx=self.ctx
        )
        return [item for contribution in results for item in contribution or ()]

    def doctor_checks(self) -> list[DoctorCheck]:
        results = self.registry.call_all(hookspecs.ws_doctor_checks, ctx=self.ctx)
        return [check for contribution in results for check in contribution or ()]

    def workspace_started(self, workspace: Workspace, attachment: NetworkAttachment) -> None:
        self.registry.call_all(hookspecs.ws_workspace_started, workspace=workspace, attachment=attachment, ctx=self.ctx)

    def workspace_stopping(self, workspace: Workspace) -> None:
        self.registry.call_all(hookspecs.ws_workspace_stopping, workspace=workspace, ctx=self.ctx)
