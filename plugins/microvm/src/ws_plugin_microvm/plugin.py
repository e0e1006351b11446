"""The plugin object of ws-plugin-microvm (entry point ``microvm`` in group ``ws``, target ``plugin``).

Imported on every ``ws`` invocation, so this module only imports ws's light modules; pydantic and the
backend code are imported inside the hooks (core's :class:`~ws.backend_plugin.BackendPlugin` forwards them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ws import hookimpl
from ws.backend_plugin import BackendPlugin

if TYPE_CHECKING:
    from ws.api import NetnsRef, WorkspaceType


class MicrovmPlugin(BackendPlugin):
    package = "ws_plugin_microvm"

    @hookimpl
    def ws_workspace_types(self) -> list[WorkspaceType]:
        """Addresses .10-.49, ``mac("vm-NAME")``, TAP ``vm-NAME`` (so names are at most 12 characters) and a
        vsock CID, as in the original."""
        from ws.types import WorkspaceType

        return [
            WorkspaceType(
                name="microvm",
                description="ephemeral qemu microVM booting ws's image with its own kernel (TAP, 9p shares, vsock)",
                aliases=("vm",),
                ip_range=(10, 49),
                mac_seed="vm",
                interface_prefix="vm-",
                uses_cid=True,
                options_model="ws_plugin_microvm.settings:MicrovmSettings",
                image_format="kernel",
            )
        ]

    @hookimpl
    def ws_instance_netns(self) -> NetnsRef | None:
        """A VM's network stack is its own kernel's: there is no host namespace to move an interface into."""
        return None


plugin = MicrovmPlugin()
