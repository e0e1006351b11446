"""Plain data passed between core and plugins (the workspace and its state are in :mod:`ws.records`).

These are dataclasses (no pydantic), but creating them costs a few milliseconds of start-up: plugin modules
import them inside their hooks or under ``TYPE_CHECKING``. The validated configuration lives in :mod:`ws.config`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from ws.records import Mount, State, Workspace, WorkspacePaths, WorkspaceStatus  # noqa: F401 - part of ws.types


@dataclass(frozen=True)
class WorkspaceType:
    """A workspace type a backend plugin provides (returned from ``ws_workspace_types``).

    ``ip_range`` is the (first, last) host number used to auto-assign addresses on networks that do not
    set a range for the type (:attr:`Network.ranges`); ``mac_seed`` is the prefix of the string hashed
    into the deterministic MAC (``"vm"`` gives ``mac("vm-NAME")``); ``interface_prefix`` names the host-side interface
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
    options_model: str | None = None
    """``"module:Class"`` of a pydantic model for the backend's options: core validates ``[<type>]`` and
    each ``[workspaces.NAME.<type>]`` (merged over it) with the configuration and hands the result to the
    backend as :attr:`Workspace.options`. ``None``: the type takes no options."""
    image_format: str = "rootfs"
    """What core prepares from ws's own images before ``ws_create``: ``"rootfs"`` (the root file system
    tarball), ``"kernel"`` (that plus a kernel and initrd, for VMs) or ``"none"`` (the backend uses no
    image; ``image`` is passed through as a reference)."""
    host_services: tuple[str, ...] = ()
    """systemd units of the host the backend needs (``incus.service``): a workspace's boot unit
    (``ws systemd install``) starts after them."""


@dataclass(frozen=True)
class NetworkAgent:
    """A long-running process a network needs besides its kernel state (a VPN tunnel's keeper).

    Core runs it as ``ws-agent-NETWORK`` (:mod:`ws.agents`): started after ``ws_network_up``, stopped before
    ``ws_network_down``; ``ws systemd install`` makes it the unit ``ws-agent-NETWORK.service`` with restarts
    and back-off. It is ``ws <command>`` in the foreground, ``Type=notify``: it sends READY=1 once the network
    is usable and WATCHDOG=1 at least every ``watchdog_sec / 2``. Workspaces on the network start after it
    and stop with it.
    """

    command: tuple[str, ...]
    """The ``ws`` subcommand and its arguments, e.g. ``("vpn", "run", "vpn")``."""
    watchdog_sec: int = 60
    start_timeout: float = 90.0
    """How long the agent may take to report ready (a first connection can be slow)."""
    stop_timeout: float = 15.0
    """How long it may take to stop before it is killed."""


@dataclass(frozen=True)
class Network:
    """A network as its owning plugin defines it from the configuration (``ws_network_define``).

    Core assigns and checks workspace addresses inside ``subnet``: ``ranges`` gives the (first, last) host
    numbers per workspace type (a type without an entry uses its own ``ip_range``); the network and
    broadcast addresses, ``host_address``, ``gateway`` and ``reserved`` are never given to a workspace.
    """

    name: str
    bridge: str
    subnet: str
    host_address: str
    """The host's own address on the bridge."""
    gateway: str
    """The guests' default gateway (the host, or a VPN endpoint)."""
    dns: tuple[str, ...]
    ranges: Mapping[str, tuple[int, int]] = field(default_factory=dict, hash=False)
    reserved: tuple[str, ...] = ()
    masquerade: bool = True
    """Whether the host NATs the network's traffic to its upstream (the VPN network does not)."""
    mtu: int = 1500
    requires: tuple[str, ...] = ()
    """Networks that must be up before this one (brought up first, in order)."""
    up_before_workspaces: bool = True
    """Core brings the network up before it starts any workspace on it."""
    agent: NetworkAgent | None = None
    """The process the network needs running (``ws systemd install`` makes it a unit), if any."""

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.rsplit("/", 1)[1])

    def attachment(self) -> NetworkAttachment:
        """Where a workspace plugs in when the network has one bridge for all of them."""
        return NetworkAttachment(self.name, self.bridge, self.gateway, self.dns, self.prefixlen, self.mtu)


@dataclass(frozen=True)
class NetworkStatus:
    """Answer of ``ws_network_status``: the real state, read from the kernel (never a cache)."""

    up: bool
    detail: str = ""
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MaintenanceResult:
    """Answer of ``ws_network_maintain``: what a network's periodic upkeep (a VPN renewal) did."""

    action: str
    """``unchanged``, ``renewed``, ``reconnected`` or ``failed``."""
    detail: str = ""
    next_due: float | None = None
    """When upkeep is due next (epoch seconds), if the network has a schedule."""


@dataclass(frozen=True)
class NetnsRef:
    """Where a running instance's network namespace is: a process in it, or a bind-mounted netns path."""

    pid: int | None = None
    path: str | None = None


@dataclass(frozen=True)
class NetworkAttachment:
    """Where a workspace plugs in, as answered by the plugin owning its network."""

    network: str
    bridge: str
    gateway: str
    dns: tuple[str, ...]
    prefixlen: int
    mtu: int = 1500


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
