"""What ``ws up/down/restart/destroy/status`` do, independent of the command line.

Core owns the sequence and the locking; plugins only implement the steps (see :mod:`ws.hookspecs`).

``up`` is idempotent and complete about restartIfChanged: the fingerprint recorded at ``up`` covers
everything that reaches the guest (the resolved workspace, the backend options, the provisioning bundle's
content, the network attachment and the image's content hash). A running workspace whose fingerprint is
unchanged is left alone (its network is still made sure to be up); a changed one is re-created, and
``plan`` says which part changed. ``restart`` always re-creates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ws.context import Context
from ws.errors import UsageError
from ws.images.prepare import planned_image, prepare_image
from ws.instances import forget_instance, record_instance
from ws.preparation import CreateRequest
from ws.provision import ensure_host_key
from ws.state import atomic_write, ensure_workspace_dirs, read_leases, remove_workspace_dirs, write_leases
from ws.types import State, Workspace, WorkspaceStatus

if TYPE_CHECKING:
    from ws.preparation import PreparedImage
    from ws.provision import Bundle
    from ws.types import Network, NetworkAttachment

APPLIED_FILE = "applied.json"
FINGERPRINT_PARTS = ("workspace", "options", "bundle", "attachment", "image")


@dataclass(frozen=True)
class UpResult:
    name: str
    action: str
    """``created``, ``recreated`` (configuration changed or forced) or ``unchanged``."""
    status: WorkspaceStatus
    changed: tuple[str, ...] = ()
    """Which fingerprint parts changed (``recreated``), or why it was re-created (``forced``)."""


@dataclass(frozen=True)
class Plan:
    """What ``up`` would do to one workspace, and why (``ws up --dry-run``)."""

    name: str
    action: str
    """``create``, ``recreate`` or ``unchanged``."""
    reasons: tuple[str, ...]
    state: State


def up(ctx: Context, workspace: Workspace, *, force: bool = False) -> UpResult:
    """Bring one workspace up; converge from whatever a crashed earlier run left."""
    wtype = ctx.registry.workspace_type(workspace.type)
    with ctx.lock("workspace", workspace.name):
        backend = ctx.backend(workspace)
        # host folders and key first: attaching writes ws's known_hosts, which must pin this key
        ensure_workspace_dirs(workspace.paths, ctx.login_user.uid, ctx.login_user.gid)
        ensure_host_key(workspace.paths.ssh_host_keys, pinned=workspace.host_key, comment=workspace.hostname)
        attachment = ctx.network(workspace.network).attach(workspace)  # also repairs a network taken down
        bundle = ctx.provisioning(workspace, attachment)
        parts = fingerprint(
            workspace, bundle, attachment, planned_image(ctx.config.core, ctx.state.root, workspace, wtype)
        )
        before = backend.status()
        changed = _changed_parts(_applied(workspace), parts)
        if not force and before.state == State.RUNNING and not changed:
            _replug(ctx, workspace, attachment)
            return UpResult(workspace.name, "unchanged", before)
        action = "created" if before.state == State.ABSENT else "recreated"
        if before.state != State.ABSENT and not wtype.replaces_in_create:
            ctx.progress(f"{workspace.name}: stopping the old instance")
            ctx.all_plugins.workspace_stopping(workspace)
            backend.stop()
        _record_lease(ctx, workspace)
        record_instance(workspace)
        image = prepare_image(ctx.config.core, ctx.state.root, workspace, wtype, ctx.progress)
        parts["image"] = image.identity
        ctx.progress(f"{workspace.name}: creating the {workspace.type} instance")
        handle = backend.create(CreateRequest(attachment=attachment, image=image, bundle=bundle))
        ctx.progress(f"{workspace.name}: starting")
        backend.start(handle)
        applied = json.dumps(parts, sort_keys=True).encode()
        atomic_write(workspace.paths.root / APPLIED_FILE, applied, 0o644, durable=False)  # a reboot stops it
        ctx.all_plugins.workspace_started(workspace, attachment)
        reasons = ("forced",) if force and not changed else tuple(changed)
        return UpResult(workspace.name, action, backend.status(), reasons if action == "recreated" else ())


def _replug(ctx: Context, workspace: Workspace, attachment: NetworkAttachment) -> None:
    """A bridge deleted and created again (``ws network down``, then ``ws up``) lost its ports while the
    workspaces behind them kept running: put the running workspace's host interface back on it. Only here,
    where the backend has just said the workspace runs, is an interface of that name known to be its own."""
    from ws.network import bridge

    if attachment.bridge:
        for change in bridge.reattach_port(attachment.bridge, workspace.host_interface):
            ctx.log.info("network change", workspace=workspace.name, change=change)


def plan(ctx: Context, workspace: Workspace, *, force: bool = False) -> Plan:
    """What ``up`` would do, computed without side effects (the network is described, not attached)."""
    wtype = ctx.registry.workspace_type(workspace.type)
    attachment = ctx.network(workspace.network).describe(workspace)
    bundle = ctx.provisioning(workspace, attachment)
    parts = fingerprint(workspace, bundle, attachment, planned_image(ctx.config.core, ctx.state.root, workspace, wtype))
    state = ctx.backend(workspace).status().state
    if state == State.ABSENT:
        return Plan(workspace.name, "create", ("no instance",), state)
    if state != State.RUNNING:
        return Plan(workspace.name, "recreate", (f"instance is {state.value}",), state)
    changed = _changed_parts(_applied(workspace), parts)
    if force:
        return Plan(workspace.name, "recreate", ("forced", *changed), state)
    return Plan(workspace.name, "recreate" if changed else "unchanged", tuple(changed), state)


def down(ctx: Context, workspace: Workspace) -> WorkspaceStatus:
    """Stop the workspace (ephemeral backends delete the instance) and detach it; host folders stay."""
    with ctx.lock("workspace", workspace.name):
        ctx.all_plugins.workspace_stopping(workspace)
        backend = ctx.backend(workspace)
        backend.stop()
        ctx.network(workspace.network).detach(workspace)
        (workspace.paths.root / APPLIED_FILE).unlink(missing_ok=True)
        forget_instance(workspace)
        return backend.status()


def destroy(ctx: Context, workspace: Workspace, *, purge: bool) -> None:
    """Remove everything the backend made; with ``purge`` also the host folders and the address lease."""
    with ctx.lock("workspace", workspace.name):
        ctx.all_plugins.workspace_stopping(workspace)
        ctx.backend(workspace).destroy(purge)
        ctx.network(workspace.network).detach(workspace)
        (workspace.paths.root / APPLIED_FILE).unlink(missing_ok=True)
        forget_instance(workspace)
        if purge:
            remove_workspace_dirs(workspace.paths)
            _drop_lease(ctx, workspace)


def status(ctx: Context, workspace: Workspace) -> WorkspaceStatus:
    return ctx.backend(workspace).status()


def networks_in_order(ctx: Context, names: list[str]) -> list[Network]:
    """The networks ``names`` and those they require, each after what it requires (a cycle is an error)."""
    ordered: list[Network] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if any(network.name == name for network in ordered):
            return
        if name in visiting:
            raise UsageError(f"networks require each other in a cycle: {' -> '.join([*visiting, name])}")
        visiting.append(name)
        record = ctx.network_record(name)
        for required in record.requires:
            visit(required)
        visiting.pop()
        ordered.append(record)

    for name in dict.fromkeys(names):
        visit(name)
    return ordered


def bring_networks_up(ctx: Context, workspaces: list[Workspace]) -> list[tuple[str, list[str]]]:
    """Networks first, then workspaces: every network the workspaces use (with what it requires) that asks
    to be up before its workspaces start. Each network's owner takes that network's lock itself; no
    workspace lock is held here, which keeps the documented lock order."""
    changes = []
    for network in networks_in_order(ctx, [w.network for w in workspaces]):
        if network.up_before_workspaces:
            changes.append((network.name, ctx.network(network.name).up()))
    return changes


def fingerprint(workspace: Workspace, bundle: Bundle, attachment: NetworkAttachment, image: PreparedImage) -> dict:
    """One hash per part of what reaches the guest, so a change can be named."""
    resolved = dataclasses.asdict(workspace)
    resolved.pop("options")
    resolved.pop("autostart")  # when the host starts it, not what runs in it
    options = workspace.options.model_dump(mode="json") if hasattr(workspace.options, "model_dump") else None
    return {
        "workspace": _digest(resolved),
        "options": _digest(options),
        "bundle": _digest(_bundle_content(bundle)),
        "attachment": _digest(dataclasses.asdict(attachment)),
        "image": image.identity,
    }


def _bundle_content(bundle: Bundle) -> dict:
    files = [
        [item.path, item.mode, item.owner, item.group, hashlib.sha256(item.content).hexdigest()]
        for item in bundle.files
    ]
    mounts = [[str(m.host_path), m.guest_path, m.read_only] for m in bundle.mounts]
    user = [bundle.user.name, bundle.user.uid, bundle.user.gid, bundle.user.home]
    return {"files": files, "mounts": mounts, "user": user, "steps": [s.name for s in bundle.steps]}


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _changed_parts(applied: dict | None, parts: dict) -> list[str]:
    if applied is None:
        return ["no fingerprint recorded"]
    return [part for part in FINGERPRINT_PARTS if applied.get(part) != parts.get(part)]


def _applied(workspace: Workspace) -> dict | None:
    try:
        recorded = json.loads((workspace.paths.root / APPLIED_FILE).read_text())
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) else None


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
