"""What the backend needs from a hypervisor, so its specifics stay in one module (:mod:`.qemu` today).

A hypervisor turns a :class:`VmSpec` into a command line the supervisor runs, and talks to the running VM
through a control socket (power button, run state). Only qemu is shipped: another hypervisor
(cloud-hypervisor) implements this protocol where it is installed and tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Share:
    """A host folder the guest mounts by ``tag``."""

    tag: str
    host_path: Path
    guest_path: str
    read_only: bool = False


@dataclass(frozen=True)
class VmSpec:
    """One boot of one workspace: everything a hypervisor needs to start it."""

    name: str
    kernel: Path
    initrd: Path
    cmdline: str
    disk: Path
    """The per-boot qcow2 overlay over the read-only base."""
    cpus: int
    memory_mib: int
    accel: str
    """``kvm`` or ``tcg``."""
    tcg_cache_mib: int
    """Under TCG: the size of the translation cache."""
    machine: str
    """``microvm`` or ``q35``."""
    tap: str
    mac: str
    vhost_net: bool
    console_log: Path
    control_socket: Path
    run_as: tuple[int, int]
    """(uid, gid) the hypervisor switches to once its devices are open."""
    cid: int | None = None
    """The vsock CID, or None when the host has no vhost-vsock."""
    shares: tuple[Share, ...] = field(default_factory=tuple)


class Hypervisor(Protocol):
    name: str

    def command(self, spec: VmSpec) -> list[str]:
        """The command line that boots ``spec`` (run by core's supervisor)."""
        ...

    def power_button(self, control_socket: Path) -> bool:
        """Ask the guest to power off (ACPI); False when the VM does not answer."""
        ...

    def run_state(self, control_socket: Path) -> str | None:
        """The VM's run state (``running``, ``paused``, ``shutdown`` ...) or None when it does not answer."""
        ...
