"""What ``ws up/down/restart/destroy/status`` do, independent of the command line.

Core owns the sequence and the locking; backends only implement the steps (see :mod:`ws.hookspecs`).
``up`` is idempotent: a running workspace whose resolved configuration is unchanged is left alone, a
changed one is re-created (the original's restartIfChanged), and ``restart`` always re-creates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from ws.context import Context
from ws.provision import ensure_host_key
from ws.state import atomic_write, ensure_workspace_dirs, read_leases, remove_workspace_dirs, write_leases
from ws.types import State, Workspace, WorkspaceStatus

APPLIED_FILE = "applied.json"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class UpResult:
    name: str
    action: str
    """``created``, ``recreated`` (configuration changed or forced) or ``unchanged``."""
    status: WorkspaceStatus


def up(ctx: Context, workspace: Workspace, *, force: bool = False, progress: Progress = lambda _: None) -> UpResult:
    """Bring one workspace up; converge from whatever a crashed earlier run left."""
    with ctx.lock("workspace", workspace.name):
        fingerprint = _fingerprint(workspace)
        before = ctx.backend("ws_status", workspace)
        if not force and before.state == State.RUNNING and _applied(workspace) == fingerprint:
            return UpResult(workspace.name, "unchanged", before)
        action = "created" if before.state == State.ABSENT else "recreated"
        if before.state != State.ABSENT and not ctx.plugins.workspace_type(workspace.type).replaces_in_create:
            progress(f"{workspace.name}: stopping the old instance")
            ctx.backend("ws_stop", workspace)
        ensure_workspace_dirs(workspace.paths, ctx.login_user.uid, ctx.login_user.gid)
        ensure_host_key(workspace.paths.ssh_host_keys, pinned=workspace.host_key, comment=workspace.hostname)
        _record_lease(ctx, workspace)
        progress(f"{workspace.name}: attaching to network {workspace.network!r}")
        attachment = ctx.attach_network(workspace)
        progress(f"{workspace.name}: creating the {workspace.type} instance")
        ctx.backend("ws_create", workspace, attachment=attachment)
        progress(f"{workspace.name}: starting")
        ctx.backend("ws_start", workspace)
        atomic_write(workspace.paths.root / APPLIED_FILE, fingerprint.encode(), 0o644)
        return UpResult(workspace.name, action, ctx.backend("ws_status", workspace))


def down(ctx: Context, workspace: Workspace) -> WorkspaceStatus:
    """Stop the workspace (ephemeral backends delete the instance); host folders stay."""
    with ctx.lock("workspace", workspace.name):
        ctx.backend("ws_stop", workspace)
        (workspace.paths.root / APPLIED_FILE).unlink(missing_ok=True)
        return ctx.backend("ws_status", workspace)


def destroy(ctx: Context, workspace: Workspace, *, purge: bool) -> None:
    """Remove everything the backend made; with ``purge`` also the host folders and the address lease."""
    with ctx.lock("workspace", workspace.name):
        ctx.backend("ws_destroy", workspace, purge=purge)
        (workspace.paths.root / APPLIED_FILE).unlink(missing_ok=True)
        if purge:
            remove_workspace_dirs(workspace.paths)
            _drop_lease(ctx, workspace)


def status(ctx: Context, workspace: Workspace) -> WorkspaceStatus:
    return ctx.backend("ws_status", workspace)


def _fingerprint(workspace: Workspace) -> str:
    data = json.dumps(dataclasses.asdict(workspace), sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def _applied(workspace: Workspace) -> str | None:
    try:
        return (workspace.paths.root / APPLIED_FILE).read_text()
    except OSError:
        return None


def _record_lease(ctx: Context, workspace: Workspace) -> None:
    with ctx.lock("network", "leases"):
        leases = {name: str(ip) for name, ip in read_leases(ctx.state.root).items()}
        if leases.get(workspace.name) != workspace.ip:
            leases[workspace.name] = workspace.ip
            write_leases(ctx.state.root, leases)


def _drop_lease(ctx: Context, workspace: Workspace) -> None:
    with ctx.lock("network", "leases"):
        leases = {name: str(ip) for name, ip in read_leases(ctx.state.root).items()}
        if leases.pop(workspace.name, None) is not None:
            write_leases(ctx.state.root, leases)
