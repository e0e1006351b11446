"""The records ``ws list`` and ``ws status`` pass around: a resolved workspace and its state.

They are part of :mod:`ws.types` (import them from there or from :mod:`ws.api`) but live in a module of
their own: creating a frozen dataclass costs about half a millisecond, and those commands, which must
answer at interactive speed, need only these five of the contract's types.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


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
    options: Any = field(default=None, compare=False, hash=False)
    """The backend's validated options (an instance of the type's ``options_model``: ``[<type>]`` with
    ``[workspaces.NAME.<type>]`` merged over it), or None for types without options."""


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
