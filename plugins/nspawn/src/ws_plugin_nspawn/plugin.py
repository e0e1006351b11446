"""The plugin object of ws-plugin-nspawn (entry point ``nspawn`` in group ``ws``, target ``plugin``).

Imported on every ``ws`` invocation, so this module only imports ws's light modules; the backend code is
imported inside the hooks (core's :class:`~ws.backend_plugin.BackendPlugin` forwards them to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ws import hookimpl
from ws.backend_plugin import BackendPlugin

if TYPE_CHECKING:
    from ws.api import Context, Workspace, WorkspaceType


class NspawnPlugin(BackendPlugin):
    package = "ws_plugin_nspawn"

    @hookimpl
    def ws_workspace_types(self) -> list[WorkspaceType]:
        """Addresses .50-.89 as in the original. The host end of the veth is named by nspawn itself,
        ``vb-NAME`` for a veth on a bridge (the original's ``ve-NAME`` is nspawn's name without a bridge), so
        names are at most 12 characters."""
        from ws.types import WorkspaceType

        return [
            WorkspaceType(
                name="nspawn",
                description="ephemeral unprivileged systemd-nspawn container over a shared read-only base",
                aliases=("container",),
                ip_range=(50, 89),
                interface_prefix="vb-",
                options_model="ws_plugin_nspawn.settings:NspawnSettings",
            )
        ]

    @hookimpl
    def ws_start(self, workspace: Workspace, ctx: Context) -> None:
        """No handle: ``create`` wrote what ``start`` needs into the machine's record."""
        self.module("backend").start(ctx, workspace)


plugin = NspawnPlugin()
