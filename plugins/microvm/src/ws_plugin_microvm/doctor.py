"""``ws doctor`` for microVMs: qemu and its version, KVM usable or not, vhost-net, vhost-vsock, virtiofsd.

Problems are failures when a workspace uses the backend, warnings otherwise; missing accelerations
(KVM, vhost) are warnings, because the backend works without them, only slower or without vsock.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ws.types import CheckStatus, DoctorCheck

if TYPE_CHECKING:
    from ws.api import Context

MIN_VERSION = (7, 0)
VIRTIOFSD = ("virtiofsd", "/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd")


def checks(ctx: Context) -> list[DoctorCheck]:
    from ws_plugin_microvm import accel, backend
    from ws_plugin_microvm.qemu import Qemu

    used = any(w.type == "microvm" for w in ctx.config.workspaces.values())
    bad = CheckStatus.FAIL if used else CheckStatus.WARN
    settings = backend.settings_for(ctx)
    version = Qemu(settings.qemu).version()
    if version is None:
        return [DoctorCheck("microvm: qemu", bad, f"{settings.qemu} does not run", "apt-get install qemu-system-x86")]
    result = [DoctorCheck("microvm: qemu", CheckStatus.OK, f"{settings.qemu} {version}")]
    if tuple(int(part) for part in version.split(".")[:2]) < MIN_VERSION:
        result.append(DoctorCheck("microvm: qemu version", bad, f"qemu {version} is older than 7.0", "upgrade qemu"))
    for tool, package in (("qemu-img", "qemu-utils"), ("mkfs.ext4", "e2fsprogs"), ("ssh", "openssh-client")):
        if shutil.which(tool) is None:
            result.append(DoctorCheck(f"microvm: {tool}", bad, f"{tool} is missing", f"apt-get install {package}"))
    result.append(_kvm_check(accel.cached_answer(ctx, settings.qemu)))
    result.append(_device_check("vhost-net", Path("/dev/vhost-net"), "virtio-net runs in qemu (slower)"))
    result.append(_device_check("vhost-vsock", Path("/dev/vhost-vsock"), "workspaces get no vsock CID"))
    virtiofsd = next((found for name in VIRTIOFSD if (found := shutil.which(name))), None)
    detail = f"{virtiofsd} found, not used" if virtiofsd else "not installed"
    reason = "ws shares folders over 9p with mapped ownership (virtiofs would pass the guest root's files through)"
    result.append(DoctorCheck("microvm: virtiofsd", CheckStatus.OK, f"{detail}: {reason}"))
    return result


def _kvm_check(probed: bool | None) -> DoctorCheck:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return DoctorCheck("microvm: KVM", CheckStatus.WARN, "no usable /dev/kvm: microVMs run under TCG (slow)",
                           "enable virtualisation (VT-x/AMD-V) and load kvm_intel or kvm_amd")  # fmt: skip
    if probed is None:
        return DoctorCheck("microvm: KVM", CheckStatus.OK, "/dev/kvm present; the next ws up probes whether it works")
    if probed:
        return DoctorCheck("microvm: KVM", CheckStatus.OK, "a KVM guest boots here")
    return DoctorCheck(
        "microvm: KVM", CheckStatus.WARN, "/dev/kvm is present but a KVM guest crashes here: microVMs run under TCG",
        "check nested virtualisation or the host's KVM; meanwhile TCG works, only slower",
    )  # fmt: skip


def _device_check(name: str, device: Path, without: str) -> DoctorCheck:
    if device.exists():
        return DoctorCheck(f"microvm: {name}", CheckStatus.OK, f"{device} present")
    module = name.replace("-", "_")
    return DoctorCheck(f"microvm: {name}", CheckStatus.WARN, f"no {device}: {without}", f"modprobe {module}")
