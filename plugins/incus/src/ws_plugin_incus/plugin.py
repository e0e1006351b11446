"""The hook implementations of ws-plugin-incus (entry point ``incus`` in group ``ws``).

Imported on every ``ws`` invocation, so this module only imports ws's light modules; pylxd, pydantic and
the backend code are imported inside the hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ws import hookimpl

if TYPE_CHECKING:
    from pathlib import Path

    from ws.api import Context, CreateRequest, DoctorCheck, NetnsRef, Workspace, WorkspaceStatus, WorkspaceType, WsError


@hookimpl
def ws_workspace_types() -> list[WorkspaceType]:
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
def ws_create(workspace: Workspace, request: CreateRequest, ctx: Context) -> object:
    from ws_plugin_incus import backend

    return backend.create(ctx, workspace, request)


@hookimpl
def ws_start(workspace: Workspace, handle: object | None, ctx: Context) -> None:
    from ws_plugin_incus import backend

    backend.start(ctx, workspace, handle)


@hookimpl
def ws_stop(workspace: Workspace, ctx: Context) -> None:
    from ws_plugin_incus import backend

    backend.stop(ctx, workspace)


@hookimpl
def ws_destroy(workspace: Workspace, ctx: Context, purge: bool) -> None:
    from ws_plugin_incus import backend

    backend.destroy(ctx, workspace)


@hookimpl
def ws_status(workspace: Workspace, ctx: Context) -> WorkspaceStatus:
    from ws_plugin_incus import backend

    return backend.status(ctx, workspace)


@hookimpl
def ws_status_many(workspaces: list[Workspace], state_dir: Path, brief: bool) -> dict[str, WorkspaceStatus | WsError]:
    """``ws list`` and ``ws status``: standard library only, one request per server for a brief listing."""
    from ws_plugin_incus import listing

    return listing.status_many(workspaces, brief)


@hookimpl
def ws_exec(workspace: Workspace, ctx: Context, command: list[str], interactive: bool) -> int:
    from ws_plugin_incus import access

    return access.exec_command(ctx, workspace, command, interactive)


@hookimpl
def ws_logs(workspace: Workspace, ctx: Context, follow: bool) -> int:
    from ws_plugin_incus import access

    return access.logs(ctx, workspace, follow)


@hookimpl
def ws_instance_netns(workspace: Workspace, ctx: Context) -> NetnsRef | None:
    from ws_plugin_incus import backend

    return backend.netns(ctx, workspace)


@hookimpl
def ws_doctor_checks(ctx: Context) -> list[DoctorCheck]:
    from ws_plugin_incus import doctor

    return doctor.checks(ctx)
