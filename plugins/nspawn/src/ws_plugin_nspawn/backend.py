"""What each backend hook does with systemd-nspawn; :mod:`ws_plugin_nspawn.plugin` only forwards to here.

Core holds the workspace's lock around every call and has created the host folders and host key before
``create``. Workspaces are ephemeral: ``create`` mounts a fresh root file system (the shared base under a new
overlay) and delivers the provisioning bundle into it, ``start`` runs nspawn under the supervisor and waits for
sshd, ``stop`` stops nspawn and removes the boot's folder. Every step first removes what a killed earlier run
left, so any crash converges on the next ``ws up`` or ``ws down``.

``machines/NAME/record.json`` holds what ``start`` needs from ``create`` (the nspawn command line) and what
``stop`` must give back (the id range): it is written before anything it describes exists.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ws.errors import WsError
from ws.types import State, WorkspaceStatus

from ws_plugin_nspawn import machine, rootfs, uidrange

if TYPE_CHECKING:
    from ws.api import Context, CreateRequest, NetnsRef, Workspace
    from ws.supervise import ServiceStatus, Supervisor

    from ws_plugin_nspawn.settings import NspawnSettings

RECORD = "record.json"
LOG_LINES = 25


def service_name(workspace: Workspace) -> str:
    return f"ws-nspawn-{workspace.name}"


def settings_for(ctx: Context, workspace: Workspace | None = None) -> NspawnSettings:
    """The workspace's options (``[nspawn]`` with its ``[workspaces.NAME.nspawn]`` merged over it, validated
    by core with the configuration), or ``[nspawn]`` alone."""
    from ws_plugin_nspawn.settings import NspawnSettings

    if workspace is not None and workspace.options is not None:
        return workspace.options
    return ctx.config.sections.get("nspawn") or NspawnSettings()


def supervisor(ctx: Context) -> Supervisor:
    from ws.supervise import supervisor_for

    return supervisor_for(ctx.state.root)


def create(ctx: Context, workspace: Workspace, request: CreateRequest) -> None:
    from ws import hostshare
    from ws.provision import deliver_to_rootfs

    image, bundle, attachment = request.image, request.bundle, request.attachment
    if image.rootfs_tar is None or image.hash is None:
        raise WsError(f"{workspace.name}: nspawn boots ws's own images only, not {image.reference!r}")
    settings = settings_for(ctx, workspace)
    program = _program(settings)
    sup = supervisor(ctx)
    _remove_boot(ctx, workspace, sup)  # what a killed earlier run left
    hostshare.protect(workspace)  # guest root writes the shared folders: nothing it leaves may be setuid here
    if Path(f"/sys/class/net/{workspace.host_interface}").exists():
        raise WsError(
            f"cannot create {workspace.name}: the network interface {workspace.host_interface} exists and is not "
            "this workspace's; remove it or rename the workspace"
        )
    base = rootfs.ensure_base(ctx.state.root, image, ctx.lock("image", f"nspawn-{image.name}"), ctx.progress)
    folder = rootfs.machine_dir(ctx.state.root, workspace.name)
    folder.mkdir(mode=0o700, parents=True)
    record_file = folder / RECORD
    record = {"workspace": workspace.name, "image": f"{image.name}-{image.hash}", "base": str(base)}
    _write_record(record_file, record)
    try:
        shift = uidrange.claim(record_file)
    except uidrange.NoFreeRange as exc:
        raise WsError(f"cannot create {workspace.name}: {exc}") from None
    record["uid_shift"] = shift
    record["argv"] = machine.nspawn_argv(
        program,
        machine=workspace.name,
        hostname=workspace.hostname,
        root=folder / "root",
        shift=shift,
        bridge=attachment.bridge,
        mounts=bundle.mounts,
        register=sup.kind == "systemd",
    )
    _write_record(record_file, record)
    root = rootfs.mount_root(folder, base, shift)
    deliver_to_rootfs(bundle, root, id_offset=shift)
    log = rootfs.console_log(ctx.state.root, workspace.name)
    log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    log.unlink(missing_ok=True)  # the console of this boot only
    log.touch(mode=0o600)
    # Old bases (a removal takes seconds) go once the command's workspaces run, not before this one boots.
    ctx.defer(lambda: rootfs.remove_unused_bases(ctx.state.root, image.name, keep=_bases_in_use(ctx.state.root)))


def start(ctx: Context, workspace: Workspace) -> None:
    from ws.supervise import ServiceSpec
    from ws.supervise.guest import start_guest

    settings = settings_for(ctx, workspace)
    record = read_record(ctx, workspace)
    if record is None or "argv" not in record:
        raise WsError(f"{workspace.name} has no root file system prepared; run: ws up {workspace.name}")
    sup = supervisor(ctx)
    name = service_name(workspace)
    spec = ServiceSpec(
        name=name,
        argv=record["argv"],
        log_file=rootfs.console_log(ctx.state.root, workspace.name),
        stop_timeout=settings.stop_timeout,
        cpus=workspace.cpus,
        memory_mib=workspace.memory_mib,
    )
    start_guest(
        sup,
        spec,
        workspace.ip,
        settings.ready_timeout,
        lambda: sup.logs(name, LOG_LINES).rstrip() or "(the console log is empty)",
    )


def stop(ctx: Context, workspace: Workspace) -> None:
    """Power the guest off (killed after ``stop_timeout``), then remove the boot: nothing of it stays."""
    _remove_boot(ctx, workspace, supervisor(ctx), settings_for(ctx, workspace).stop_timeout)


def destroy(ctx: Context, workspace: Workspace) -> None:
    """Stop, forget the console log, and remove bases of the image that no boot uses any more."""
    from ws import hostshare
    from ws.images import is_ws_image

    stop(ctx, workspace)
    hostshare.release(workspace)
    rootfs.console_log(ctx.state.root, workspace.name).unlink(missing_ok=True)
    if is_ws_image(workspace.image):
        rootfs.remove_unused_bases(ctx.state.root, workspace.image, keep=_bases_in_use(ctx.state.root))


def status(ctx: Context, workspace: Workspace) -> WorkspaceStatus:
    sup = supervisor(ctx)
    current = sup.status(service_name(workspace))
    record = read_record(ctx, workspace) or {}
    extra = {"service": service_name(workspace), "supervisor": sup.kind, "machine": workspace.name}
    if current.running:
        detail = f"machine {workspace.name}, {sup.kind} service {service_name(workspace)} (pid {current.pid})"
        limits = _limits(workspace, sup, current)
        return WorkspaceStatus(
            State.RUNNING, "; ".join([detail, *limits]), ip=workspace.ip, image=record.get("image"),
            started_at=current.started_at,
            extra={**extra, "pid": current.pid, "uid_shift": record.get("uid_shift"), "limits": limits},
        )  # fmt: skip
    if record.get("uid_shift") and machine.processes_in_range(record["uid_shift"]):
        detail = "nspawn is gone but its guest still runs (ws down or ws up cleans it away)"
        return WorkspaceStatus(State.ERROR, detail, extra=extra)
    if rootfs.machine_dir(ctx.state.root, workspace.name).exists():
        return WorkspaceStatus(
            State.STOPPED, "not running; its last boot's files remain (ws down removes them)", extra=extra
        )
    return WorkspaceStatus(State.ABSENT, f"no machine {workspace.name}", extra=extra)


def _limits(workspace: Workspace, sup: Supervisor, current: ServiceStatus) -> list[str]:
    """What applies of the workspace's cpus and memory: the unit's properties under systemd, else what the
    detached supervisor could write into the service's cgroups."""
    if workspace.cpus is None and workspace.memory_mib is None:
        return []
    return ["limits: the unit's CPUQuota and MemoryMax"] if sup.kind == "systemd" else list(current.limits)


def read_record(ctx: Context, workspace: Workspace) -> dict | None:
    try:
        return json.loads((rootfs.machine_dir(ctx.state.root, workspace.name) / RECORD).read_text())
    except (FileNotFoundError, ValueError):
        return None


def leader(ctx: Context, workspace: Workspace) -> int | None:
    """The guest's PID 1 (for nsenter), from machined where it is used, else from nspawn's children."""
    sup = supervisor(ctx)
    if sup.kind == "systemd":
        from ws import systemd

        found = systemd.get_machine(workspace.name)
        return found.leader if found is not None else None
    current = sup.status(service_name(workspace))
    return machine.container_init(current.pid) if current.running else None


def netns(ctx: Context, workspace: Workspace) -> NetnsRef | None:
    """The guest's network namespace, as its PID 1 (None when it does not run)."""
    from ws.types import NetnsRef

    init = leader(ctx, workspace)
    return NetnsRef(pid=init) if init is not None else None


def _remove_boot(ctx: Context, workspace: Workspace, sup: Supervisor, timeout: float | None = None) -> None:
    """Stop the service (and machine), kill a guest that outlived a killed nspawn, wait for its veth to go,
    then remove the mounts, the folder and the id range claim."""
    stopped = sup.stop(service_name(workspace), timeout=timeout)
    if sup.kind == "systemd":
        from ws import systemd

        stopped = systemd.terminate_machine(workspace.name) or stopped
    folder = rootfs.machine_dir(ctx.state.root, workspace.name)
    record = read_record(ctx, workspace)
    if record is not None and "uid_shift" in record:
        stopped = machine.kill_container(record["uid_shift"]) or stopped
    if stopped:
        _wait_link_gone(workspace.host_interface)
    rootfs.remove_machine_dir(folder)
    if record is not None and "uid_shift" in record:
        uidrange.release(record["uid_shift"], folder / RECORD)


def _wait_link_gone(name: str, timeout: float = 5.0) -> None:
    """The veth goes with the container's network namespace, which the kernel frees shortly after its last
    process; one still there after that is not this workspace's (another host tool named it) and is left."""
    deadline = time.monotonic() + timeout
    while Path(f"/sys/class/net/{name}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _bases_in_use(state_root: Path) -> set[Path]:
    machines = rootfs.nspawn_dir(state_root) / "machines"
    used = set()
    for record_file in machines.glob(f"*/{RECORD}") if machines.is_dir() else ():
        try:
            used.add(Path(json.loads(record_file.read_text())["base"]))
        except (OSError, ValueError, KeyError):
            continue
    return used


def _program(settings: NspawnSettings) -> str:
    program = shutil.which(settings.nspawn)
    if program is None:
        raise WsError(f"{settings.nspawn} not found: apt-get install systemd-container (or set [nspawn] nspawn)")
    return program


def _write_record(path: Path, record: dict) -> None:
    from ws.state import atomic_write

    atomic_write(path, (json.dumps(record, indent=2) + "\n").encode(), 0o600, durable=False)  # a boot's: ephemeral
