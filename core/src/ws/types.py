"""Plain data passed between core and plugins.

These are dataclasses (no pydantic), but creating them costs a few milliseconds of start-up: plugin modules
import them inside their hooks or under ``TYPE_CHECKING``. The validated configuration lives in :mod:`ws.config`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class WorkspaceType:
    """A workspace type a backend plugin provides (returned from ``ws_workspace_types``).

    ``ip_range`` is the (first, last) host number inside a /24 sandbox subnet used to auto-assign
    addresses; ``mac_seed`` is the prefix of the string hashed into the deterministic MAC
    (``"vm"`` gives ``mac("vm-NAME")``); ``interface_prefix`` names the host-side interface
    (``"vm-"`` gives ``vm-NAME``), which bounds the workspace name to 15 bytes in total.
    """

    name: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    ip_range: tuple[int, int] = (130, 250)
    mac_seed: str | None = None
    interface_prefix: str = "ws-"
    uses_cid: bool = False
    replaces_in_create: bool = False
    """The backend's ``ws_create`` replaces an existing instance itself (ephemeral backends), so ``ws up``
    does not call ``ws_stop`` first and the backend may overlap removing the old instance with making the
    new one."""


@dataclass(frozen=True)
class Mount:
    """A host folder shared into the guest."""

    host_path: Path
    guest_path: str
    read_only: bool = False


@dataclass(frozen=True)
class WorkspacePaths:
    """The host folders that hold everything a workspace keeps across re-creation."""

    root: Path
    work: Path
    ssh_host_keys: Path
    agent: Path


@dataclass(frozen=True)
class Workspace:
    """One workspace as resolved by core: configuration plus every derived identity.

    Backends receive this and never recompute names, addresses or MACs themselves.
    """

    name: str
    type: str
    ip: str
    prefixlen: int
    mac: str
    hostname: str
    host_interface: str
    instance_name: str
    network: str
    image: str
    autostart: bool
    cpus: int | None
    memory_mib: int | None
    cid: int | None
    host_key: str | None
    mounts: tuple[Mount, ...]
    paths: WorkspacePaths
    options: dict = field(default_factory=dict, compare=False, hash=False)
    """Backend-specific keys from ``[workspaces.NAME.<type>]``, unvalidated by core."""


@dataclass(frozen=True)
class NetworkAttachment:
    """Where a workspace plugs in, as answered by the plugin owning its network."""

    network: str
    bridge: str
    gateway: str
    dns: tuple[str, ...]
    prefixlen: int
    mtu: int = 1500


class State(enum.StrEnum):
    """What a backend reports about a workspace's instance."""

    RUNNING = "running"
    STOPPED = "stopped"
    ABSENT = "absent"
    ERROR = "error"


@dataclass(frozen=True)
class WorkspaceStatus:
    """Answer of ``ws_status``: the real state as the backend sees it."""

    state: State
    detail: str = ""
    ip: str | None = None
    image: str | None = None
    started_at: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ProvisionFile:
    """A file placed into the guest before its first boot."""

    path: str
    content: bytes
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    secret: bool = False
    """Secret contents are masked by ``ws provision show`` and never logged."""


class CheckStatus(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class DoctorCheck:
    """One line of ``ws doctor``: what was checked, the verdict, and how to fix a failure."""

    name: str
    status: CheckStatus
    detail: str = ""
    fix: str = ""
