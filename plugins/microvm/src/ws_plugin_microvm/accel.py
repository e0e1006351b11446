"""KVM or TCG: ``[microvm] accel``, and for ``auto`` core's KVM probe, asked once per host boot.

The probe boots the image's kernel under KVM (core's :func:`ws.kvm.kvm_works`, up to 30 s when KVM is
broken), so its answer is kept in ``<state>/microvm/kvm.json`` with the host's boot id and qemu's path: a
reboot or another qemu asks again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ws.errors import WsError

if TYPE_CHECKING:
    from ws.api import Context

    from ws_plugin_microvm.settings import MicrovmSettings

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def choose(ctx: Context, settings: MicrovmSettings, kernel: Path) -> str:
    if settings.accel == "tcg":
        return "tcg"
    works = kvm_usable(ctx, settings.qemu, kernel)
    if settings.accel == "kvm":
        if not works:
            raise WsError('[microvm] accel = "kvm" but KVM does not work on this host (see ws doctor); use "auto"')
        return "kvm"
    if not works:
        ctx.log.warning("kvm_unusable", detail="KVM does not work here; microVMs run under TCG (much slower)")
        ctx.progress("warning: KVM does not work on this host; the microVM runs under TCG (much slower)")
    return "kvm" if works else "tcg"


def kvm_usable(ctx: Context, qemu: str, kernel: Path) -> bool:
    from ws.kvm import kvm_works

    cached = cached_answer(ctx, qemu)
    if cached is not None:
        return cached
    folder = ctx.state.root / "microvm"
    with ctx.lock("backend", "microvm-kvm-probe"):
        cached = cached_answer(ctx, qemu)
        if cached is not None:
            return cached
        ctx.progress("probing whether KVM works on this host")
        works = kvm_works(qemu, kernel, folder / "kvm-probe")
        from ws.state import atomic_write

        answer = {"boot_id": _boot_id(), "qemu": qemu, "works": works}
        atomic_write(folder / "kvm.json", json.dumps(answer).encode(), 0o600)
        return works


def cached_answer(ctx: Context, qemu: str) -> bool | None:
    """The probe's answer for this host boot and qemu, or None when it has not been asked."""
    try:
        answer = json.loads((ctx.state.root / "microvm" / "kvm.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    if answer.get("boot_id") != _boot_id() or answer.get("qemu") != qemu:
        return None
    return bool(answer.get("works"))


def _boot_id() -> str:
    return BOOT_ID.read_text().strip()
