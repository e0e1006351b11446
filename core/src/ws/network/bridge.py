"""The sandbox bridge and IPv4 forwarding, through netlink (pyroute2), never by running ``ip``.

ws marks a bridge it created with an interface alias so that it only ever changes or deletes its own
bridge: an interface of the same name that lacks the mark is somebody else's and is refused.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from ws.errors import WsError

OWNER_ALIAS = "managed by ws"
SYSFS_NET = Path("/sys/class/net")
FORWARDING = Path("/proc/sys/net/ipv4/ip_forward")
PROC_ROUTE = Path("/proc/net/route")

_SIOCGIFFLAGS, _SIOCGIFADDR, _SIOCGIFNETMASK = 0x8913, 0x8915, 0x891B
_IFF_UP = 0x1


@dataclass(frozen=True)
class BridgeState:
    """What the kernel says about the interface named like the bridge."""

    name: str
    exists: bool
    is_bridge: bool = False
    owned: bool = False
    up: bool = False
    addresses: tuple[str, ...] = ()
    """IPv4 addresses as ``address/prefixlen``."""

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "exists": self.exists,
            "is_bridge": self.is_bridge,
            "owned_by_ws": self.owned,
            "up": self.up,
            "addresses": list(self.addresses),
        }


def probe(name: str, interface: ipaddress.IPv4Interface) -> bool:
    """Cheap yes/no: is our bridge there, up, with ``interface`` as its primary address?

    Uses sysfs and two ioctls instead of netlink because importing pyroute2 alone costs about a quarter
    of a second, and this check runs on every ``ws up``. A False answer sends the caller to :func:`ensure`.
    """
    base = SYSFS_NET / name
    try:
        if not (base / "bridge").is_dir() or (base / "ifalias").read_text().strip() != OWNER_ALIAS:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            flags = struct.unpack_from("H", _ifreq(sock, _SIOCGIFFLAGS, name), 16)[0]
            address = socket.inet_ntoa(_ifreq(sock, _SIOCGIFADDR, name)[20:24])
            netmask = socket.inet_ntoa(_ifreq(sock, _SIOCGIFNETMASK, name)[20:24])
    except OSError:
        return False
    return bool(flags & _IFF_UP) and ipaddress.IPv4Interface(f"{address}/{netmask}") == interface


def _ifreq(sock: socket.socket, request: int, name: str) -> bytes:
    return fcntl.ioctl(sock.fileno(), request, struct.pack("16s24x", name.encode()))


def inspect(name: str) -> BridgeState:
    """The full picture of the interface (for ``ws network status``)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return BridgeState(name=name, exists=False)
        return _state(ipr, name, found[0])


def _state(ipr, name: str, index: int) -> BridgeState:
    link = ipr.get_links(index)[0]
    linkinfo = link.get("linkinfo")
    addresses = tuple(
        f"{addr.get('address')}/{addr['prefixlen']}" for addr in ipr.get_addr(index=index, family=socket.AF_INET)
    )
    return BridgeState(
        name=name,
        exists=True,
        is_bridge=bool(linkinfo) and linkinfo.get("kind") == "bridge",
        owned=link.get("ifalias") == OWNER_ALIAS,
        up=bool(link["flags"] & _IFF_UP),
        addresses=addresses,
    )


def ensure(name: str, interface: ipaddress.IPv4Interface) -> list[str]:
    """Create or repair our bridge: exists, marked, has exactly ``interface`` as IPv4 address, is up.

    Returns what was changed (empty when it already was so).
    """
    from pyroute2 import IPRoute

    changes: list[str] = []
    wanted = f"{interface.ip}/{interface.network.prefixlen}"
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            ipr.link("add", ifname=name, kind="bridge")
            index = ipr.link_lookup(ifname=name)[0]
            ipr.link("set", index=index, IFLA_IFALIAS=OWNER_ALIAS)
            changes.append(f"created bridge {name}")
        else:
            index = found[0]
        state = _state(ipr, name, index)
        if not state.owned:
            raise WsError(
                f"interface {name} exists but was not created by ws; remove it or set [network] bridge to another name"
            )
        for stale in set(state.addresses) - {wanted}:
            address, prefixlen = stale.split("/")
            ipr.addr("del", index=index, address=address, prefixlen=int(prefixlen))
            changes.append(f"removed address {stale} from {name}")
        if wanted not in state.addresses:
            ipr.addr("add", index=index, address=str(interface.ip), prefixlen=interface.network.prefixlen)
            changes.append(f"added address {wanted} to {name}")
        if not state.up:
            ipr.link("set", index=index, state="up")
            changes.append(f"set {name} up")
    return changes


def reattach_port(bridge: str, port: str) -> list[str]:
    """Put an existing interface ``port`` (a running workspace's host end) back on ``bridge``.

    A bridge deleted and created again (``ws network down``, then ``ws up``) has lost its ports; the
    workspaces behind them keep running. Cheap when nothing is to do: one sysfs read. An absent ``port``
    (the workspace is not running) is left to the backend.
    """
    base = SYSFS_NET / port
    if not base.exists():
        return []
    master = base / "master"
    if master.exists() and master.resolve().name == bridge:
        return []
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        found, bridges = ipr.link_lookup(ifname=port), ipr.link_lookup(ifname=bridge)
        if not found or not bridges:
            return []
        try:
            ipr.link("set", index=found[0], master=bridges[0], state="up")
        except NetlinkError as error:  # not a workspace's veth or tap (another program's interface of that name)
            raise WsError(f"cannot put {port} on {bridge}: {error.args[1]}; is {port} another program's?") from None
    return [f"put {port} back on {bridge}"]


def remove(name: str) -> list[str]:
    """Delete our bridge if it exists; an interface of that name that ws did not create is left alone."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return []
        if not _state(ipr, name, found[0]).owned:
            raise WsError(f"interface {name} was not created by ws; leaving it in place")
        ipr.link("del", index=found[0])
    return [f"deleted bridge {name}"]


def forwarding_enabled() -> bool:
    return FORWARDING.read_text().strip() == "1"


def set_forwarding(enabled: bool) -> None:
    FORWARDING.write_text("1\n" if enabled else "0\n")


def default_route_interface(proc_route: Path = PROC_ROUTE) -> str:
    """The interface of the main table's IPv4 default route with the lowest metric.

    Read from ``/proc/net/route`` (per network namespace, no netlink import needed).
    """
    candidates = []
    for line in proc_route.read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
            candidates.append((int(fields[6]), fields[0]))
    if not candidates:
        raise WsError("the host has no IPv4 default route; set [network] upstream to the interface to use")
    return min(candidates)[1]
