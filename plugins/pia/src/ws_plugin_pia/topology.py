"""The VPN network's kernel objects: the kill switch is the topology, not a rule that can be forgotten.

Host namespace: the bridge with the host's address and IPv6 off, **no masquerade**, a policy rule that sends
whatever the host would route from the bridge into a table holding only a blackhole (so even with every
nftables rule flushed nothing from the bridge is forwarded), and the host table of :mod:`ws_plugin_pia.rules`.

VPN endpoint: a network namespace owned by the plugin (not a guest OS) with one veth leg on the bridge at the
endpoint address and **no default route** until the WireGuard interface brings one (see
:mod:`ws_plugin_pia.tunnel`); forwarding on, IPv6 off, its own table.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from ws.errors import WsError
from ws.network import bridge as core_bridge
from ws.network import firewall

from ws_plugin_pia import netns, rules

LAN = "lan0"
"""The endpoint's leg on the bridge, inside the namespace."""
RULE_PRIORITY = 90
"""Before the main table (32766): traffic routed from the bridge never reaches the host's routes."""


@dataclass(frozen=True)
class Layout:
    """Everything the topology depends on (from ``[pia]``)."""

    bridge: str
    subnet: IPv4Network
    host_address: IPv4Address
    endpoint_address: IPv4Address
    namespace: str
    interface: str
    mtu: int

    @property
    def host_leg(self) -> str:
        """The host end of the endpoint's veth, a port of the bridge."""
        return f"{self.namespace[:11]}-ep"

    @property
    def route_table(self) -> int:
        """The blackhole routing table's number, derived from the bridge name (stable, unlikely to collide)."""
        return 0x10000 + int.from_bytes(hashlib.sha256(self.bridge.encode()).digest()[:2], "big")


def ensure_host(layout: Layout, state_dir: Path) -> list[str]:
    """Bridge, IPv6 off, blackhole policy route, host table, forwarding on (the endpoint routes through the
    host's namespace only for its WireGuard socket, which lives there).

    The bridge is marked for ``state_dir`` and ``state_dir/network/BRIDGE`` exists while it is up, as for core's
    sandbox bridge: another ws configuration then refuses the bridge instead of taking it over."""
    from ipaddress import IPv4Interface

    core_bridge.check_owner(layout.bridge, state_dir)
    (state_dir / "network" / layout.bridge).mkdir(mode=0o700, parents=True, exist_ok=True)
    interface = IPv4Interface(f"{layout.host_address}/{layout.subnet.prefixlen}")
    changes = core_bridge.ensure(layout.bridge, interface, state_dir)
    changes += _sysctl(f"net/ipv6/conf/{layout.bridge}/disable_ipv6", "1")
    changes += _blackhole(layout)
    changes += ensure_table(rules.host_table(layout.bridge), rules.render_host(layout.bridge))
    return changes


def ensure_table(table: str, script: str) -> list[str]:
    """Apply ``script`` unless the ``inet`` table already carries its fingerprint (in the table's comment).
    The plugin's tables are ``inet`` only."""
    mark = f"ws:{firewall.fingerprint(script)[:16]}"
    listing = firewall.listing(table, families=("inet",))
    if listing is not None and mark in listing:
        return []
    firewall.apply(script.replace('\tcomment "', f'\tcomment "{mark} ', 1))
    return [f"applied nftables table inet {table}"]


def _sysctl(relative: str, value: str) -> list[str]:
    path = Path("/proc/sys/net") / relative.removeprefix("net/")
    if path.read_text().strip() == value:
        return []
    path.write_text(value + "\n")
    return [f"set {relative.replace('/', '.')} = {value}"]


def _blackhole(layout: Layout) -> list[str]:
    from pyroute2 import IPRoute

    changes = []
    with IPRoute() as ipr:
        rules_found = [
            rule
            for rule in ipr.get_rules(family=socket.AF_INET)
            if rule.get_attr("FRA_IIFNAME") == layout.bridge and rule.get_attr("FRA_TABLE") == layout.route_table
        ]
        if not rules_found:
            ipr.rule("add", iifname=layout.bridge, table=layout.route_table, priority=RULE_PRIORITY)
            changes.append(f"routed everything arriving from {layout.bridge} to blackhole table {layout.route_table}")
        routes = ipr.get_routes(family=socket.AF_INET, table=layout.route_table)
        if not any(route["type"] == 6 and route["dst_len"] == 0 for route in routes):  # RTN_BLACKHOLE
            ipr.route("replace", dst="0.0.0.0/0", type="blackhole", table=layout.route_table)
            changes.append(f"added blackhole default route to table {layout.route_table}")
    return changes


def remove_host(layout: Layout, state_dir: Path) -> list[str]:
    """Everything :func:`ensure_host` made; a bridge of that name owned by another configuration is refused."""
    from pyroute2 import IPRoute

    core_bridge.check_owner(layout.bridge, state_dir, foreign_ok=True)
    changes = firewall.remove(rules.host_table(layout.bridge))
    with IPRoute() as ipr:
        for rule in ipr.get_rules(family=socket.AF_INET):
            if rule.get_attr("FRA_IIFNAME") == layout.bridge and rule.get_attr("FRA_TABLE") == layout.route_table:
                ipr.rule("del", iifname=layout.bridge, table=layout.route_table, priority=rule.get_attr("FRA_PRIORITY"))
                changes.append(f"removed the policy rule of {layout.bridge}")
        if ipr.get_routes(family=socket.AF_INET, table=layout.route_table):
            ipr.route("del", dst="0.0.0.0/0", type="blackhole", table=layout.route_table)
    changes += core_bridge.remove(layout.bridge)
    with contextlib.suppress(FileNotFoundError):
        (state_dir / "network" / layout.bridge).rmdir()
    return changes


# --- the endpoint namespace --------------------------------------------------------------------------------


def ensure_endpoint(layout: Layout, inside: netns.InNetns | None = None) -> list[str]:
    """The namespace, its veth leg on the bridge with the endpoint address (no gateway), forwarding on, IPv6
    off. The tunnel and its default route are :mod:`ws_plugin_pia.tunnel`'s."""
    from pyroute2 import IPRoute
    from pyroute2 import netns as pr_netns

    changes = []
    if not netns.exists(layout.namespace):
        pr_netns.create(layout.namespace)
        changes.append(f"created network namespace {layout.namespace}")
    with IPRoute() as host, IPRoute(netns=layout.namespace) as inner:
        legs, inner_legs = host.link_lookup(ifname=layout.host_leg), inner.link_lookup(ifname=LAN)
        if legs and not inner_legs:  # the pair's other end is in an older namespace of that name
            host.link("del", index=legs[0])
            changes.append(f"deleted {layout.host_leg}, whose other end was not in {layout.namespace}")
            legs = []
        if not legs:
            if inner_legs:
                inner.link("del", index=inner_legs[0])
            host.link("add", ifname=layout.host_leg, kind="veth", peer={"ifname": LAN, "net_ns_fd": layout.namespace})
            host.link("set", index=host.link_lookup(ifname=layout.host_leg)[0], IFLA_IFALIAS=core_bridge.OWNER_ALIAS)
            changes.append(f"created veth {layout.host_leg} <-> {layout.namespace}/{LAN}")
        index = host.link_lookup(ifname=layout.host_leg)[0]
        bridge_index = host.link_lookup(ifname=layout.bridge)[0]
        link = host.get_links(index)[0]
        if link.get_attr("IFLA_MASTER") != bridge_index or not link["flags"] & 1:
            host.link("set", index=index, master=bridge_index, state="up")
            changes.append(f"put {layout.host_leg} on {layout.bridge}")
    own = inside or netns.InNetns(layout.namespace)
    try:
        changes += own.call(lambda: _configure_inside(layout))
    finally:
        if inside is None:
            own.close()
    return changes


def _configure_inside(layout: Layout) -> list[str]:
    """Runs in the namespace: sysctls, the leg's address, loopback up."""
    from pyroute2 import IPRoute

    changes = []
    for key, value in (
        ("net.ipv6.conf.all.disable_ipv6", "1"),
        ("net.ipv6.conf.default.disable_ipv6", "1"),
        ("net.ipv4.ip_forward", "1"),
    ):
        current = Path("/proc/sys", *key.split(".")).read_text().strip()
        if current != value:
            netns.write_sysctl(key, value)
            changes.append(f"{layout.namespace}: {key} = {value}")
    with IPRoute() as ipr:
        lo = ipr.link_lookup(ifname="lo")[0]
        ipr.link("set", index=lo, state="up")
        index = ipr.link_lookup(ifname=LAN)[0]
        found = ipr.get_addr(index=index, family=socket.AF_INET)
        addresses = {(address.get_attr("IFA_ADDRESS"), address["prefixlen"]) for address in found}
        wanted = (str(layout.endpoint_address), layout.subnet.prefixlen)
        for address, prefixlen in addresses - {wanted}:
            ipr.addr("del", index=index, address=address, prefixlen=prefixlen)
        if wanted not in addresses:
            ipr.addr("add", index=index, address=wanted[0], prefixlen=wanted[1])
            changes.append(f"{layout.namespace}: {LAN} has {wanted[0]}/{wanted[1]}")
        ipr.link("set", index=index, state="up", mtu=1500)
    return changes


def apply_endpoint_rules(layout: Layout, inside: netns.InNetns, dnat: rules.Dnat | None) -> list[str]:
    """Replace the namespace's table when it differs from what ``dnat`` needs."""
    wanted = rules.render_endpoint(LAN, layout.interface, layout.subnet, layout.endpoint_address, dnat)
    changes = inside.call(lambda: ensure_table(rules.ENDPOINT_TABLE, wanted))
    return [f"{layout.namespace}: {change}" for change in changes]


def remove_endpoint(layout: Layout) -> list[str]:
    """Delete the namespace (its veth, tunnel, table and routes go with it)."""
    from pyroute2 import IPRoute
    from pyroute2 import netns as pr_netns

    changes = []
    with IPRoute() as host:
        legs = host.link_lookup(ifname=layout.host_leg)
        if legs:
            host.link("del", index=legs[0])
            changes.append(f"deleted veth {layout.host_leg}")
    if netns.exists(layout.namespace):
        pr_netns.remove(layout.namespace)
        changes.append(f"deleted network namespace {layout.namespace}")
    return changes


def endpoint_state(layout: Layout) -> dict:
    """What the kernel says (for ``ws network status``): namespace, leg, default route of the namespace."""
    state = {"namespace": netns.exists(layout.namespace), "leg": (Path("/sys/class/net") / layout.host_leg).exists()}
    return state


def check_owned_leg(layout: Layout) -> None:
    """An interface named like our leg that ws did not create is somebody else's."""
    alias = Path("/sys/class/net") / layout.host_leg / "ifalias"
    if alias.exists() and alias.read_text().strip() != core_bridge.OWNER_ALIAS:
        raise WsError(f"interface {layout.host_leg} exists but was not created by ws; remove it or set pia.namespace")
