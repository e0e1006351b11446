"""The plugin object of ws-plugin-incus (entry point ``incus`` in group ``ws``, target ``plugin``).

Imported on every ``ws`` invocation, so this module only imports ws's light modules; pylxd, pydantic and
the backend code are imported inside the hooks (core's :class:`~ws.backend_plugin.BackendPlugin` forwards
them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ws import hookimpl
from ws.backend_plugin import BackendPlugin

if TYPE_CHECKING:
    from ws.api import Workspace, WorkspaceStatus, WorkspaceType, WsError


class IncusPlugin(BackendPlugin):
    package = "ws_plugin_incus"

    @hookimpl
    def ws_workspace_types(self) -> list[WorkspaceType]:
        """Addresses .90-.129 and ``mac("incus-NAME")`` as in the original; the host-side veth is ``wsi-NAME``
        (so names are at most 11 characters)."""
        from ws.types import WorkspaceType

        return [
            WorkspaceType(
                name="incus",
                description="ephemeral unprivileged Incus container (local daemon or remote Incus cluster)",
                ip_range=(90, 129),
                mac_seed="incus",
                interface_prefix="wsi-",
                replaces_in_create=True,
                options_model="ws_plugin_incus.settings:IncusSettings",
                host_services=("incus.service",),  # boot units start after the local daemon (no-op for a remote)
            )
        ]

    @hookimpl
    def ws_status_many(self, workspaces: list[Workspace], brief: bool) -> dict[str, WorkspaceStatus | WsError]:
        """``ws list`` and ``ws status``: standard library only, one request per server for a brief listing."""
        return self.module("listing").status_many(workspaces, brief)


plugin = IncusPlugin()
