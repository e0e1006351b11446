"""Does KVM really work on this host? Shared by the microVM backend and the VM test tier.

``/dev/kvm`` existing is not enough: on some hosts (nested virtualisation, odd CPU models) KVM guests die
early (qemu aborts on "failed to set MSR" with ``-cpu host``, or stops on "KVM internal error"). So the
probe boots the guest's kernel alone under KVM: it works if the kernel gets as far as its "cannot mount
root" panic, which needs no disk, network or initrd.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

PROBE_SECONDS = 30


def kvm_works(qemu: str, kernel: Path, workdir: Path, timeout: float = PROBE_SECONDS) -> bool:
    """Boot ``kernel`` alone under KVM in ``workdir`` (its console and errors are left there to read)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or shutil.which(qemu) is None:
        return False
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "kvm-probe.log"
    errors = workdir / "kvm-probe.err"
    log.unlink(missing_ok=True)
    argv = [
        qemu, "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-no-user-config", "-display", "none",
        "-no-reboot", "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent",
        "-chardev", f"file,id=console,path={log}", "-serial", "chardev:console",
    ]  # fmt: skip
    with open(errors, "wb") as err:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None and b"KVM internal error" not in errors.read_bytes():
        if _panicked(log):
            break
        time.sleep(0.2)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return _panicked(log)


def _panicked(log: Path) -> bool:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "Kernel panic" in text and "VFS" in text
