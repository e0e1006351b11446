"""What each backend hook does with a qemu microVM; :mod:`ws_plugin_microvm.plugin` only forwards to here.

Core holds the workspace's lock around every call and has created the host folders and the host key before
``create``. Workspaces are ephemeral: ``create`` removes whatever an earlier boot (or a killed ``ws``) left,
makes sure the image's read-only ext4 base exists, and prepares this boot: a qcow2 overlay, an initrd that
carries the provisioning bundle, the TAP ``vm-NAME`` on the network's bridge, and qemu's command line.
``start`` runs qemu under core's supervisor and waits for sshd; ``stop`` presses the ACPI power button over
QMP, kills qemu after ``stop_timeout`` and deletes the boot: overlay, initrd and TAP (the console log stays
for ``ws logs``).

``<state>/microvm/NAME/record.json`` says what the boot consists of; it is written before anything it
describes exists, so every later call can clean up after a crash.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ws.errors import WsError
from ws.types import State, WorkspaceStatus

from ws_plugin_microvm import accel, delivery, disk, tap
from ws_plugin_microvm.hypervisor import Hypervisor, Share, VmSpec
from ws_plugin_microvm.qemu import Qemu, supports_microvm

if TYPE_CHECKING:
    from ws.api import Context, CreateRequest, Workspace
    from ws.supervise import Supervisor

    from ws_plugin_microvm.settings import MicrovmSettings

RECORD = "record.json"
CONSOLE = "console.log"
LOG_LINES = 30
KILL_TIMEOUT = 10.0
VHOST_NET = Path("/dev/vhost-net")
VHOST_VSOCK = Path("/dev/vhost-vsock")


@dataclass(frozen=True)
class Boot:
    """What ``create`` hands to ``start``: the command line of this boot."""

    argv: list[str]


def plugin_dir(ctx: Context) -> Path:
    return ctx.state.root / "microvm"


def boot_dir(ctx: Context, workspace: Workspace) -> Path:
    return plugin_dir(ctx) / workspace.name


def service_name(workspace: Workspace) -> str:
    return f"ws-microvm-{workspace.name}"


def settings_for(ctx: Context, workspace: Workspace | None = None) -> MicrovmSettings:
    """The workspace's options (``[microvm]`` with ``[workspaces.NAME.microvm]`` merged, validated by core),
    or ``[microvm]`` alone."""
    from ws_plugin_microvm.settings import MicrovmSettings

    if workspace is not None and workspace.options is not None:
        return workspace.options
    return ctx.config.sections.get("microvm") or MicrovmSettings()


def hypervisor(settings: MicrovmSettings) -> Hypervisor:
    """The one hypervisor shipped (see :mod:`ws_plugin_microvm.hypervisor`)."""
    return Qemu(settings.qemu)


def supervisor(ctx: Context) -> Supervisor:
    from ws.supervise import supervisor_for

    return supervisor_for(ctx.state.root)


def create(ctx: Context, workspace: Workspace, request: CreateRequest) -> Boot:
    settings = settings_for(ctx, workspace)
    image = request.image
    if image.reference is not None or image.kernel is None or image.initrd is None or image.rootfs_tar is None:
        raise WsError(f"{workspace.name}: the microVM backend boots ws's own images only, not {image.name!r}")
    user = request.bundle.user
    if user.uid == 0:
        raise WsError("the microVM backend runs qemu as the login user, which must not be root; set [user] uid")
    sup = supervisor(ctx)
    remove_boot(ctx, workspace, sup)  # whatever a killed earlier run left
    if tap.exists(workspace.host_interface):
        raise WsError(
            f"cannot create {workspace.name}: the network interface {workspace.host_interface} exists and is not "
            "this workspace's; remove it or rename the workspace"
        )
    folder = boot_dir(ctx, workspace)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    base = disk.base_path(plugin_dir(ctx), image.hash, settings.disk_gib)
    record = {"workspace": workspace.name, "image": f"{image.name}@{image.hash}", "base": str(base)}
    _write_record(folder / RECORD, {**record, "tap": workspace.host_interface})  # before anything exists
    ctx.progress(f"{workspace.name}: preparing the disk of image {image.name}")
    disk.ensure_base(
        plugin_dir(ctx), image.rootfs_tar, image.hash, settings.disk_gib, ctx.lock("image", f"microvm-{image.hash}")
    )
    chosen_accel = accel.choose(ctx, settings, image.kernel)
    machine = _machine(settings, chosen_accel, base)
    shares = _shares(workspace, request)
    spec = VmSpec(
        name=workspace.name,
        kernel=image.kernel,
        initrd=folder / "initrd.img",
        cmdline=_cmdline(workspace),
        disk=folder / "overlay.qcow2",
        cpus=settings.vcpus(workspace.cpus),
        memory_mib=workspace.memory_mib or settings.memory_mib,
        accel=chosen_accel,
        tcg_cache_mib=settings.tcg_cache_mib,
        machine=machine,
        tap=workspace.host_interface,
        mac=workspace.mac,
        vhost_net=VHOST_NET.exists(),
        console_log=folder / CONSOLE,
        control_socket=folder / "qmp.sock",
        run_as=(user.uid, user.gid),
        cid=workspace.cid if VHOST_VSOCK.exists() else None,
        shares=shares,
    )
    argv = hypervisor(settings).command(spec)
    record |= {
        "accel": spec.accel,
        "machine": spec.machine,
        "tap": spec.tap,
        "cid": spec.cid,
        "vhost_net": spec.vhost_net,
        "argv": argv,
    }
    _write_record(folder / RECORD, record)
    disk.create_overlay(base, spec.disk)
    ids = _guest_ids(base)
    archive = delivery.provision_tar(request.bundle, ids, _extra_files(workspace, shares), _exec_public_key(ctx))
    delivery.write_initrd(image.initrd, archive, spec.initrd)
    _open_console(spec.console_log)
    tap.create(spec.tap, request.attachment.bridge, request.attachment.mtu)
    disk.remove_unused_bases(plugin_dir(ctx), keep=_bases_in_use(ctx))
    return Boot(argv)


def start(ctx: Context, workspace: Workspace, boot: Boot | None) -> None:
    from ws.supervise import ServiceSpec
    from ws.supervise.guest import start_guest

    settings = settings_for(ctx, workspace)
    record = read_record(ctx, workspace)
    if record is None:
        raise WsError(f"{workspace.name} has no boot prepared; run: ws up {workspace.name}")
    argv = boot.argv if boot is not None else record["argv"]
    sup = supervisor(ctx)
    name = service_name(workspace)
    folder = boot_dir(ctx, workspace)
    spec = ServiceSpec(name=name, argv=argv, log_file=folder / "qemu.log", stop_timeout=KILL_TIMEOUT)
    if record["accel"] == "tcg":
        ctx.progress(f"{workspace.name}: booting under TCG (no usable KVM here): this takes minutes")
    start_guest(sup, spec, workspace.ip, settings.ready_timeout, lambda: _failure_text(folder, sup, name))


def stop(ctx: Context, workspace: Workspace) -> None:
    """Power the guest off (killed after ``stop_timeout``), then remove the boot: nothing of it stays."""
    remove_boot(ctx, workspace, supervisor(ctx), settings_for(ctx, workspace).stop_timeout)


def destroy(ctx: Context, workspace: Workspace) -> None:
    """Stop, then remove the workspace's boot folder (console logs) and bases no other workspace uses."""
    import shutil

    stop(ctx, workspace)
    shutil.rmtree(boot_dir(ctx, workspace), ignore_errors=True)
    disk.remove_unused_bases(plugin_dir(ctx), keep=_bases_in_use(ctx))


def remove_boot(ctx: Context, workspace: Workspace, sup: Supervisor, grace: float = 0.0) -> None:
    """Stop qemu (gracefully within ``grace`` seconds, else killed), then delete what the boot made."""
    name = service_name(workspace)
    folder = boot_dir(ctx, workspace)
    record = read_record(ctx, workspace)
    if sup.status(name).running:
        if grace > 0 and hypervisor(settings_for(ctx, workspace)).power_button(folder / "qmp.sock"):
            ctx.progress(f"{workspace.name}: waiting for the guest to power off")
            _wait_stopped(sup, name, grace)
        sup.stop(name, KILL_TIMEOUT)
    if record is not None and record.get("tap"):
        tap.remove(record["tap"])
    for leftover in ("overlay.qcow2", "initrd.img", "qmp.sock", RECORD):
        (folder / leftover).unlink(missing_ok=True)


def status(ctx: Context, workspace: Workspace) -> WorkspaceStatus:
    sup = supervisor(ctx)
    record = read_record(ctx, workspace)
    if record is None:
        return WorkspaceStatus(State.ABSENT, f"no microVM for {workspace.name}")
    service = sup.status(service_name(workspace))
    if "argv" not in record:
        return WorkspaceStatus(
            State.STOPPED, "a boot was being prepared and never started (ws up or ws down cleans it up)",
            image=record.get("image"), extra={"tap": record.get("tap")},
        )  # fmt: skip
    vsock = f"vsock CID {record['cid']}" if record.get("cid") else "no vsock (the host has no /dev/vhost-vsock)"
    extra = {
        "accel": record["accel"],
        "machine": record["machine"],
        "tap": record["tap"],
        "vsock_cid": record.get("cid"),
        "vhost_net": record.get("vhost_net", False),
        "supervisor": sup.kind,
        "pid": service.pid,
    }
    if not service.running:
        return WorkspaceStatus(
            State.STOPPED, "qemu is not running (ws up boots it again, ws down cleans up)", image=record["image"],
            extra=extra,
        )  # fmt: skip
    run_state = hypervisor(settings_for(ctx, workspace)).run_state(boot_dir(ctx, workspace) / "qmp.sock")
    run_state = run_state or "not answering on its control socket"
    detail = f"qemu {record['machine']} under {record['accel'].upper()}, {run_state}, {vsock}"
    if service.started_at:
        detail += f", up {_duration(time.time() - service.started_at)}"
    state = State.RUNNING if run_state in ("running", "not answering on its control socket") else State.ERROR
    return WorkspaceStatus(
        state, detail, ip=workspace.ip, image=record["image"], started_at=service.started_at,
        extra={**extra, "run_state": run_state},
    )  # fmt: skip


def read_record(ctx: Context, workspace: Workspace) -> dict | None:
    try:
        return json.loads((boot_dir(ctx, workspace) / RECORD).read_text())
    except (FileNotFoundError, ValueError):
        return None


def console_tail(folder: Path, lines: int = LOG_LINES) -> str:
    try:
        text = (folder / CONSOLE).read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _failure_text(folder: Path, sup: Supervisor, name: str) -> str:
    console = console_tail(folder) or "(the console log is empty)"
    qemu_errors = sup.logs(name, 5).strip()
    return console + (f"\nqemu said: {qemu_errors}" if qemu_errors else "")


def _machine(settings: MicrovmSettings, chosen_accel: str, base: Path) -> str:
    """qemu's microvm machine where it boots the guest: a kernel with virtio-mmio and ACPI, under KVM (under
    TCG its kernel cannot calibrate a clock without PIT or HPET and hangs early in boot, as seen here)."""
    if settings.machine != "auto":
        return settings.machine
    config = disk.kernel_config(base)
    return "microvm" if chosen_accel == "kvm" and supports_microvm(config) else "q35"


def _cmdline(workspace: Workspace) -> str:
    return f"root=/dev/vda rw boot=ws console=ttyS0 panic=-1 net.ifnames=0 systemd.hostname={workspace.hostname}"


def _shares(workspace: Workspace, request: CreateRequest) -> tuple[Share, ...]:
    """The bundle's mounts as 9p shares, except the host key folder (delivered instead: qemu, running as the
    login user, cannot read the root-only key). Only folders can be shared."""
    shares = []
    for mount in request.bundle.mounts:
        if mount.host_path == workspace.paths.ssh_host_keys:
            continue
        if not mount.host_path.is_dir():
            raise WsError(
                f"{workspace.name}: {mount.host_path} (for {mount.guest_path}) is not a folder; the microVM backend "
                "shares folders only"
            )
        shares.append(Share(f"ws{len(shares)}", mount.host_path, mount.guest_path, mount.read_only))
    return tuple(shares)


def _extra_files(workspace: Workspace, shares: tuple[Share, ...]) -> list[tuple[str, bytes, int]]:
    from ws.provision.hostkey import GUEST_DIR

    keys = workspace.paths.ssh_host_keys
    files = [
        (f"{GUEST_DIR}/{path.name}", path.read_bytes(), path.stat().st_mode & 0o777)
        for path in sorted(keys.iterdir())
        if path.is_file() and not path.name.startswith(".")
    ]
    return [*files, ("/etc/fstab", delivery.fstab(shares).encode(), 0o644)]


def _guest_ids(base: Path):
    from ws.provision import IdMap

    return IdMap.from_text(*disk.guest_ids_text(base))


def _exec_public_key(ctx: Context) -> str:
    """ws's own key for ``ws exec`` (one per state directory, root-only), made on first use."""
    private = plugin_dir(ctx) / "exec_key"
    public = private.with_name("exec_key.pub")
    if not public.exists():
        with ctx.lock("backend", "microvm-exec-key"):
            if not public.exists():
                private.unlink(missing_ok=True)
                private.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ws-exec", "-f", str(private)],
                    check=True, capture_output=True,
                )  # fmt: skip
    return public.read_text().strip()


def _open_console(path: Path) -> None:
    """The console of this boot only, readable by root alone (the guest may print secrets)."""
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _write_record(path: Path, record: dict) -> None:
    from ws.state import atomic_write

    atomic_write(path, json.dumps(record, indent=1).encode(), 0o600)


def _bases_in_use(ctx: Context) -> set[Path]:
    used = set()
    for path in plugin_dir(ctx).glob(f"*/{RECORD}"):
        try:
            used.add(Path(json.loads(path.read_text())["base"]))
        except (OSError, ValueError, KeyError):
            continue
    return used


def _wait_stopped(sup: Supervisor, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and sup.status(name).running:
        time.sleep(0.2)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"
