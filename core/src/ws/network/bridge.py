"""The sandbox bridge and IPv4 forwarding, through netlink (pyroute2), never by running ``ip``.

ws marks a bridge it created with an interface alias naming the state directory of the configuration that
created it (``managed by ws for /var/lib/ws``), so that it only ever changes or deletes its own bridge: an
interface of the same name without the mark is somebody else's, one marked for another state directory is
another ws configuration's, and both are refused with a sentence that says whose it is. The bare mark
``managed by ws`` (written before the mark named its state directory) counts as the default state
directory's.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from ws.errors import WsError
from ws.state import DEFAULT_STATE_DIR

OWNER_ALIAS = "managed by ws"
"""The alias prefix; ws versions before the state directory was recorded wrote exactly this."""
SYSFS_NET = Path("/sys/class/net")
PROC_IPV6_CONF = Path("/proc/sys/net/ipv6/conf")
IPV6_OFF = {"disable_ipv6": "1", "accept_ra": "0"}
"""No link-local address on the bridge and no router advertisements from guests: the host takes no IPv6
configuration from a workspace (kernel settings, so they hold when nftables is flushed)."""
FORWARDING = Path("/proc/sys/net/ipv4/ip_forward")
PROC_ROUTE = Path("/proc/net/route")

_SIOCGIFFLAGS, _SIOCGIFADDR, _SIOCGIFNETMASK = 0x8913, 0x8915, 0x891B
_NET_ADDR_SET = "3"
"""``addr_assign_type`` of an address set by hand: the kernel then never changes the bridge's MAC."""
_IFF_UP = 0x1


@dataclass(frozen=True)
class BridgeState:
    """What the kernel says about the interface named like the bridge."""

    name: str
    exists: bool
    is_bridge: bool = False
    owner: str | None = None
    """The state directory named in ws's mark; None when ws did not create the interface."""
    up: bool = False
    addresses: tuple[str, ...] = ()
    """IPv4 addresses as ``address/prefixlen``."""

    @property
    def owned(self) -> bool:
        return self.owner is not None

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "exists": self.exists,
            "is_bridge": self.is_bridge,
            "owned_by_ws": self.owned,
            "state_dir": self.owner,
            "up": self.up,
            "addresses": list(self.addresses),
        }


def owner_alias(state_dir: Path) -> str:
    """The mark of a bridge that the configuration with ``state_dir`` created."""
    return f"{OWNER_ALIAS} for {state_dir}"


def _owner(alias: str | None) -> str | None:
    if alias == OWNER_ALIAS:
        return str(DEFAULT_STATE_DIR)
    if alias and alias.startswith(f"{OWNER_ALIAS} for /"):
        return alias.removeprefix(f"{OWNER_ALIAS} for ")
    return None


def check_owner(name: str, state_dir: Path, *, foreign_ok: bool = False) -> None:
    """Refuse, before anything is changed, an existing interface ``name`` that is not this configuration's:
    another ws configuration's (another state directory), or, unless ``foreign_ok`` (``network down``
    leaves such an interface alone anyway), somebody else's. One sysfs read.

    A bridge marked for a state directory that no longer holds its network files was left behind by a
    configuration that is gone; it is taken over.
    """
    try:
        alias = (SYSFS_NET / name / "ifalias").read_text().strip()
    except FileNotFoundError:
        return
    owner = _owner(alias)
    if owner is None:
        if foreign_ok:
            return
        raise WsError(
            f"interface {name} exists but was not created by ws; remove it or set [network] bridge to another name"
        )
    if owner == str(state_dir) or not (Path(owner) / "network" / name).is_dir():
        return
    raise WsError(
        f"bridge {name} belongs to another ws configuration, the one with state directory {owner} (its "
        f"`ws network up` created it); give this configuration (state directory {state_dir}) its own "
        "[network] bridge and subnet, or run ws with that configuration"
    )


def probe(name: str, interface: ipaddress.IPv4Interface, state_dir: Path) -> bool:
    """Cheap yes/no: is this configuration's bridge there, up, with its fixed MAC and ``interface`` as its
    primary address?

    Uses sysfs and two ioctls instead of netlink because importing pyroute2 alone costs about a quarter
    of a second, and this check runs on every ``ws up``. A False answer sends the caller to :func:`ensure`.
    """
    base = SYSFS_NET / name
    try:
        if not (base / "bridge").is_dir() or (base / "ifalias").read_text().strip() != owner_alias(state_dir):
            return False
        if not _mac_fixed(name):
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            flags = struct.unpack_from("H", _ifreq(sock, _SIOCGIFFLAGS, name), 16)[0]
            address = socket.inet_ntoa(_ifreq(sock, _SIOCGIFADDR, name)[20:24])
            netmask = socket.inet_ntoa(_ifreq(sock, _SIOCGIFNETMASK, name)[20:24])
    except OSError:
        return False
    return (
        bool(flags & _IFF_UP)
        and ipaddress.IPv4Interface(f"{address}/{netmask}") == interface
        and _ipv6_off(name, write=False)
    )


def _ipv6_off(name: str, write: bool) -> bool:
    """Whether IPv6 is off on the interface (a kernel without IPv6 counts as off); ``write`` turns it off."""
    folder = PROC_IPV6_CONF / name
    if not folder.is_dir():
        return True
    done = True
    for key, value in IPV6_OFF.items():
        if (folder / key).read_text().strip() != value:
            if not write:
                return False
            (folder / key).write_text(value + "\n")
            done = False
    return done


def fixed_mac(name: str) -> str:
    """The bridge's own MAC, locally administered and derived from its name.

    Left to itself a bridge takes the lowest MAC among its ports, so a workspace's port joining or leaving
    can change it, and every change of a device's MAC makes the kernel flush that device's neighbour
    entries, the permanent ones included: the pinned ARP entries (:mod:`ws.network.failsafe`) would be gone
    until ws next converges. A MAC set by hand is never changed by the kernel.
    """
    import hashlib

    digest = hashlib.sha256(name.encode()).digest()
    return ":".join(f"{byte:02x}" for byte in (0x02, *digest[:5]))


def _mac_fixed(name: str) -> bool:
    return (SYSFS_NET / name / "addr_assign_type").read_text().strip() == _NET_ADDR_SET


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
        owner=_owner(link.get("ifalias")),
        up=bool(link["flags"] & _IFF_UP),
        addresses=addresses,
    )


def ensure(name: str, interface: ipaddress.IPv4Interface, state_dir: Path) -> list[str]:
    """Create or repair our bridge: exists, marked for ``state_dir``, has exactly ``interface`` as IPv4
    address, is up. The caller has checked ownership (:func:`check_owner`).

    Returns what was changed (empty when it already was so).
    """
    from pyroute2 import IPRoute

    changes: list[str] = []
    wanted = f"{interface.ip}/{interface.network.prefixlen}"
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        _refuse_subnet_in_use(ipr, name, interface.network)
        if not found:
            found = [_create_marked(ipr, name, owner_alias(state_dir))]
            changes.append(f"created bridge {name}")
        index = found[0]
        state = _state(ipr, name, index)
        if not state.owned:
            raise WsError(
                f"interface {name} exists but was not created by ws; remove it or set [network] bridge to another name"
            )
        if ipr.get_links(index)[0].get("ifalias") != owner_alias(state_dir):  # also rewrites a bare mark
            ipr.link("set", index=index, IFLA_IFALIAS=owner_alias(state_dir))
            if state.owner != str(state_dir):
                changes.append(f"took over bridge {name} from {state.owner} (that state directory has no network)")
            else:
                changes.append(f"marked bridge {name} with its state directory")
        for stale in set(state.addresses) - {wanted}:
            address, prefixlen = stale.split("/")
            ipr.addr("del", index=index, address=address, prefixlen=int(prefixlen))
            changes.append(f"removed address {stale} from {name}")
        if wanted not in state.addresses:
            ipr.addr("add", index=index, address=str(interface.ip), prefixlen=interface.network.prefixlen)
            changes.append(f"added address {wanted} to {name}")
        if not _mac_fixed(name):
            ipr.link("set", index=index, address=fixed_mac(name))
            changes.append(f"fixed the MAC address of {name}")
        if not _ipv6_off(name, write=True):
            changes.append(f"turned IPv6 and router advertisements off on {name}")
        if not state.up:
            ipr.link("set", index=index, state="up")
            changes.append(f"set {name} up")
    return changes


def _create_marked(ipr, name: str, alias: str) -> int:
    """Create the bridge under a temporary name, mark it, then rename it: the kernel cannot mark a link in
    the request that creates it, and a ws killed in between must not leave an unmarked ``name`` that every
    later run refuses (a stray ``wsnew-*`` bridge is harmless)."""
    import secrets

    temporary = f"wsnew-{secrets.token_hex(4)}"
    ipr.link("add", ifname=temporary, kind="bridge")
    index = ipr.link_lookup(ifname=temporary)[0]
    try:
        ipr.link("set", index=index, IFLA_IFALIAS=alias)
        ipr.link("set", index=index, ifname=name)
    except BaseException:
        ipr.link("del", index=index)
        raise
    return index


def _refuse_subnet_in_use(ipr, name: str, subnet: ipaddress.IPv4Network) -> None:
    """Another interface with an address in ``subnet`` (another ws configuration's bridge, a container
    manager's network) would make routes and the DNS forwarder's address clash: say whose it is."""
    for message in ipr.get_addr(family=socket.AF_INET):
        label = message.get("label") or message.get_attr("IFA_LABEL")
        address = message.get("address") or message.get_attr("IFA_ADDRESS")
        if label == name or address is None:
            continue
        other = ipaddress.IPv4Interface(f"{address}/{message['prefixlen']}")
        if not other.network.overlaps(subnet):
            continue
        owner = _state(ipr, label, message["index"]).owner
        whose = "not ws's" if owner is None else f"ws's bridge of the configuration with state directory {owner}"
        raise WsError(
            f"[network] subnet {subnet} overlaps {other} on interface {label} ({whose}); "
            "give this configuration another subnet"
        )


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
    """Delete our bridge if it exists (the caller has checked ownership with :func:`check_owner`); an
    interface of that name that ws did not create is left alone."""
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
