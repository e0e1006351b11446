"""Start qemu for a test VM: accelerator choice (KVM probe), throw-away overlay, console log, backdoor port.

On the hosts this project runs on /dev/kvm exists but KVM guests die (qemu aborts on "failed to set MSR"
with ``-cpu host``, or stops on "KVM internal error" with its default CPU), so KVM is probed by booting the
image's kernel alone with core's probe (:mod:`ws.kvm`, shared with the microVM backend) and TCG is the
fallback. ``WS_VM_ACCEL=kvm|tcg`` skips the probe.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ws_testing.image import Image, check_tools

QEMU = "qemu-system-x86_64"
# Units the tests never need are masked in the image itself (image.MASKED_UNITS), not per boot here.
KERNEL_CMDLINE = "root=/dev/vda rw console=ttyS0 net.ifnames=0 mitigations=off panic=-1"


@dataclass
class Qemu:
    """A running qemu process and the files that belong to it."""

    process: subprocess.Popen[bytes]
    workdir: Path
    accel: str
    console_log: Path
    backdoor_socket: Path
    xchg: Path
    started: float

    def kill(self) -> None:
        """Kill qemu's whole process group (it was started in a session of its own) and reap it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def choose_accel(image: Image, workdir: Path) -> str:
    """``WS_VM_ACCEL`` when set, else ``kvm`` if a KVM guest survives early boot here, else ``tcg``."""
    forced = os.environ.get("WS_VM_ACCEL", "")
    if forced:
        if forced not in ("kvm", "tcg"):
            raise ValueError(f"WS_VM_ACCEL must be kvm or tcg, not {forced!r}")
        return forced
    return "kvm" if kvm_works(image, workdir) else "tcg"


def kvm_works(image: Image, workdir: Path) -> bool:
    """Boot the kernel alone under KVM (core's probe): it works if the kernel reaches its "cannot mount root"
    panic."""
    from ws.kvm import kvm_works as probe

    return probe(QEMU, image.kernel, workdir)


def start(image: Image, workdir: Path, accel: str, code_share: Path, cpus: int = 2, memory_mib: int = 2048) -> Qemu:
    """Start the VM on a fresh overlay over the cached image; returns at once (the guest boots meanwhile)."""
    check_tools([QEMU, "qemu-img"])
    overlay = workdir / "overlay.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.disk), "-F", "qcow2", str(overlay)], check=True
    )
    xchg = workdir / "xchg"
    xchg.mkdir(exist_ok=True)
    console_log = workdir / "console.log"
    socket = workdir / "backdoor.sock"
    accel_args = ["-accel", "kvm", "-cpu", "host"] if accel == "kvm" else ["-accel", "tcg", "-cpu", "max"]
    argv = [
        QEMU, "-name", "ws-test", "-machine", "q35", *accel_args, "-smp", str(cpus), "-m", str(memory_mib),
        "-nodefaults", "-display", "none", "-no-reboot",
        "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", KERNEL_CMDLINE,
        "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
        # eth0 exists and gets 10.0.2.15 by DHCP, but restrict=on lets no packet leave the VM
        "-netdev", "user,id=net0,restrict=on", "-device", "virtio-net-pci,netdev=net0",
        "-device", "virtio-rng-pci",
        "-chardev", f"file,id=console,path={console_log}", "-serial", "chardev:console",
        "-device", "virtio-serial-pci",
        "-chardev", f"socket,id=backdoor,path={socket},server=on,wait=off",
        "-device", "virtserialport,chardev=backdoor,name=ws.backdoor",
        "-virtfs", f"local,path={code_share},mount_tag=wscode,security_model=none,readonly=on",
        "-virtfs", f"local,path={xchg},mount_tag=wsxchg,security_model=none",
    ]  # fmt: skip
    (workdir / "qemu.argv").write_text("\n".join(argv) + "\n")
    die_with_parent = _die_with_parent()
    with open(workdir / "qemu.err", "wb") as err:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True, preexec_fn=die_with_parent
        )
    return Qemu(process, workdir, accel, console_log, socket, xchg, time.monotonic())


def _die_with_parent():
    """A preexec function: qemu gets SIGKILL if pytest itself dies (killed, or a CI timeout), so no VM
    outlives its session. Resolved here, in the parent, so the forked child only makes the call."""
    pr_set_pdeathsig = 1
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return functools.partial(prctl, pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
