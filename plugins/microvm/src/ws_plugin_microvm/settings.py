"""``[microvm]`` and ``[workspaces.NAME.microvm]``: accelerator, machine, resources and timeouts.

Core validates both with the configuration (the type's ``options_model``) and hands the merged result to the
backend as ``workspace.options``. Imported only by the hooks (pydantic is heavy), never at start-up.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MAX_CPUS = 8
DEFAULT_MEMORY_MIB = 4096
DEFAULT_TCG_CACHE_MIB = 128


class MicrovmSettings(BaseModel):
    """Every key may be overridden per workspace. ``cpus`` and ``memory`` of the workspace itself win over
    the defaults here (``[workspaces.NAME] cpus = 4, memory = "4G"``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    accel: Literal["auto", "kvm", "tcg"] = "auto"
    """``auto``: KVM when a probe boot under KVM works on this host, else TCG (slow; ``ws up`` warns)."""
    machine: Literal["auto", "microvm", "q35"] = "auto"
    """``auto``: qemu's ``microvm`` machine when the guest kernel can find virtio-mmio devices, else ``q35``."""
    cpus: int | None = Field(default=None, ge=1, le=255)
    """vCPUs when the workspace sets no ``cpus``; default: 8, or the host's CPU count when it has fewer."""
    memory_mib: int = Field(default=DEFAULT_MEMORY_MIB, ge=256)
    """Guest memory in MiB when the workspace sets no ``memory`` (the original's 4096)."""

    def vcpus(self, configured: int | None) -> int:
        """The workspace's ``cpus``, else this section's, else 8 or fewer on a smaller host."""
        import os

        return configured or self.cpus or min(DEFAULT_MAX_CPUS, os.cpu_count() or 1)

    tcg_cache_mib: int = Field(default=DEFAULT_TCG_CACHE_MIB, ge=16, le=2048)
    """Under TCG only: the size of qemu's translation cache (``-accel tcg,tb-size=``). qemu's own default is
    1 GiB, which a running guest fills over time and which then stays resident; a smaller cache is flushed
    and refilled more often (see docs/backends/microvm.md for the measured trade)."""
    disk_gib: int = Field(default=16, ge=2, le=4096)
    """Size of the guest's root file system (sparse: the base holds the image, the overlay what the guest writes)."""
    ready_timeout: float = Field(default=600.0, gt=0)
    """Seconds ``ws up`` waits for sshd (a full boot under TCG takes minutes on a small host)."""
    stop_timeout: float = Field(default=60.0, gt=0)
    """Seconds ``ws down`` waits for the guest to power off after the ACPI power button before killing qemu."""
    qemu: str = "qemu-system-x86_64"
    """The qemu system emulator (a name on PATH or an absolute path)."""
