"""The hook implementations of ws-plugin-microvm (entry point ``microvm`` in group ``ws``).

Imported on every ``ws`` invocation, so this module only imports ws's light modules; pydantic and the
backend code are imported inside the hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ws import hookimpl

if TYPE_CHECKING:
    from ws.api import Context, CreateRequest, DoctorCheck, NetnsRef, Workspace, WorkspaceStatus, WorkspaceType


@hookimpl
def ws_workspace_types() -> list[WorkspaceType]:
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
def ws_create(workspace: Workspace, request: CreateRequest, ctx: Context) -> object:
    from ws_plugin_microvm import backend

    return backend.create(ctx, workspace, request)


@hookimpl
def ws_start(workspace: Workspace, handle: object | None, ctx: Context) -> None:
    from ws_plugin_microvm import backend

    backend.start(ctx, workspace, handle)


@hookimpl
def ws_stop(workspace: Workspace, ctx: Context) -> None:
    from ws_plugin_microvm import backend

    backend.stop(ctx, workspace)


@hookimpl
def ws_destroy(workspace: Workspace, ctx: Context, purge: bool) -> None:
    from ws_plugin_microvm import backend

    backend.destroy(ctx, workspace)


@hookimpl
def ws_status(workspace: Workspace, ctx: Context) -> WorkspaceStatus:
    from ws_plugin_microvm import backend

    return backend.status(ctx, workspace)


@hookimpl
def ws_exec(workspace: Workspace, ctx: Context, command: list[str], interactive: bool) -> int:
    from ws_plugin_microvm import access

    return access.exec_command(ctx, workspace, command, interactive)


@hookimpl
def ws_logs(workspace: Workspace, ctx: Context, follow: bool) -> int:
    from ws_plugin_microvm import access

    return access.logs(ctx, workspace, follow)


@hookimpl
def ws_instance_netns(workspace: Workspace, ctx: Context) -> NetnsRef | None:
    """A VM's network stack is its own kernel's: there is no host namespace to move an interface into."""
    return None


@hookimpl
def ws_doctor_checks(ctx: Context) -> list[DoctorCheck]:
    from ws_plugin_microvm import doctor

    return doctor.checks(ctx)
