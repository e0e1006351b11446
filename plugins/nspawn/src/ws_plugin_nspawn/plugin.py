"""The hook implementations of ws-plugin-nspawn (entry point ``nspawn`` in group ``ws``).

Imported on every ``ws`` invocation, so this module only imports ws's light modules; the backend code is
imported inside the hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ws import hookimpl

if TYPE_CHECKING:
    from ws.api import Context, CreateRequest, DoctorCheck, NetnsRef, Workspace, WorkspaceStatus, WorkspaceType


@hookimpl
def ws_workspace_types() -> list[WorkspaceType]:
    """Addresses .50-.89 as in the original. The host end of the veth is named by nspawn itself, ``vb-NAME``
    for a veth on a bridge (the original's ``ve-NAME`` is nspawn's name without a bridge), so names are at most
    12 characters."""
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
def ws_create(workspace: Workspace, request: CreateRequest, ctx: Context) -> None:
    from ws_plugin_nspawn import backend

    backend.create(ctx, workspace, request)


@hookimpl
def ws_start(workspace: Workspace, handle: object | None, ctx: Context) -> None:
    from ws_plugin_nspawn import backend

    backend.start(ctx, workspace)


@hookimpl
def ws_stop(workspace: Workspace, ctx: Context) -> None:
    from ws_plugin_nspawn import backend

    backend.stop(ctx, workspace)


@hookimpl
def ws_destroy(workspace: Workspace, ctx: Context, purge: bool) -> None:
    from ws_plugin_nspawn import backend

    backend.destroy(ctx, workspace)


@hookimpl
def ws_status(workspace: Workspace, ctx: Context) -> WorkspaceStatus:
    from ws_plugin_nspawn import backend

    return backend.status(ctx, workspace)


@hookimpl
def ws_exec(workspace: Workspace, ctx: Context, command: list[str], interactive: bool) -> int:
    from ws_plugin_nspawn import access

    return access.exec_command(ctx, workspace, command, interactive)


@hookimpl
def ws_logs(workspace: Workspace, ctx: Context, follow: bool) -> int:
    from ws_plugin_nspawn import access

    return access.logs(ctx, workspace, follow)


@hookimpl
def ws_instance_netns(workspace: Workspace, ctx: Context) -> NetnsRef | None:
    from ws_plugin_nspawn import backend

    return backend.netns(ctx, workspace)


@hookimpl
def ws_doctor_checks(ctx: Context) -> list[DoctorCheck]:
    from ws_plugin_nspawn import doctor

    return doctor.checks(ctx)
