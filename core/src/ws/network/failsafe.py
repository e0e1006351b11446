"""What keeps guests in when nftables is gone: kernel state that ``nft flush ruleset`` does not touch.

``systemctl reload nftables`` on Debian flushes the whole ruleset, ws's tables included, while guests stay
attached and forwarding stays on. These layers hold in that window (the guard, :mod:`ws.network.guard`,
re-applies the tables within a second):

* **policy routing**: ``ip rule iif <bridge> to <range> prohibit`` for the private ranges (``block_lan``) and
  for the sandbox subnet itself (a guest routing through the host to another guest). Local delivery is
  looked up before these rules, so the host's DNS keeps answering; nothing else leaves for the LAN.
* **bridge port isolation**: workspace ports cannot send to each other, only to the host.
* **permanent neighbour entries**: the host's ARP entry for each workspace address is the workspace's own
  MAC, so a guest answering ARP for another's address (or the host's) cannot redirect the host's traffic.
  They last because the bridge's MAC is fixed (:func:`ws.network.bridge.fixed_mac`).
* **no IPv6 on the bridge** (``disable_ipv6``, ``accept_ra = 0``): no link-local address and no router
  advertisements from guests (see :mod:`ws.network.bridge`).

All through netlink (pyroute2, imported only here, on the converge path).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

RULE_PRIORITY = 900
"""Before ``main`` (32766) and after ``local`` (0): routed traffic only, never local delivery."""
RULE_PROTOCOL = 0x77
"""The ``proto`` ws writes on its rules; with ``iif <bridge>`` it marks a rule as ws's own."""
_NUD_PERMANENT = 0x80


def blocked_ranges(
    subnet: ipaddress.IPv4Network, lan: Iterable[str], block_lan: bool, guest_to_guest: bool
) -> list[ipaddress.IPv4Network]:
    """Destinations no packet from the bridge may be routed to, even without the firewall."""
    ranges = [ipaddress.IPv4Network(item) for item in lan] if block_lan else []
    ranges = [item for item in ranges if int(item.network_address)]  # 0/8 is never routed (nor a valid rule)
    if not guest_to_guest and not any(subnet.subnet_of(item) for item in ranges):
        ranges.append(subnet)
    return ranges


def ensure(bridge: str, ranges: list[ipaddress.IPv4Network], isolate: bool, neighbours: dict[str, str]) -> list[str]:
    """Make the routing rules, port isolation and neighbour entries exactly what is asked; return changes."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        changes = _sync_rules(ipr, bridge, ranges)
        found = ipr.link_lookup(ifname=bridge)
        if found:
            changes += isolate_ports(ipr, found[0], isolate)
            changes += _sync_neighbours(ipr, found[0], neighbours)
    return changes


def remove(bridge: str) -> list[str]:
    """Delete ws's routing rules for the bridge (isolation and neighbours go with the bridge itself)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return _sync_rules(ipr, bridge, [])


def _own_rules(ipr, bridge: str) -> dict[ipaddress.IPv4Network, object]:
    rules = {}
    for rule in ipr.get_rules(family=socket.AF_INET):
        if rule.get("iifname") == bridge and rule.get("protocol") == RULE_PROTOCOL:
            network = ipaddress.IPv4Network(f"{rule.get('dst') or '0.0.0.0'}/{rule['dst_len']}")
            rules[network] = rule
    return rules


def _sync_rules(ipr, bridge: str, ranges: list[ipaddress.IPv4Network]) -> list[str]:
    changes = []
    present = _own_rules(ipr, bridge)
    for network in present.keys() - set(ranges):
        ipr.rule(
            "del", family=socket.AF_INET, dst=str(network.network_address), dst_len=network.prefixlen,
            iifname=bridge, action="FR_ACT_PROHIBIT", priority=RULE_PRIORITY, protocol=RULE_PROTOCOL,
        )  # fmt: skip
        changes.append(f"removed routing rule iif {bridge} to {network} prohibit")
    for network in ranges:
        if network not in present:
            ipr.rule(
                "add", family=socket.AF_INET, dst=str(network.network_address), dst_len=network.prefixlen,
                iifname=bridge, action="FR_ACT_PROHIBIT", priority=RULE_PRIORITY, protocol=RULE_PROTOCOL,
            )  # fmt: skip
            changes.append(f"added routing rule iif {bridge} to {network} prohibit")
    return changes


def isolate_ports(ipr, bridge_index: int, isolate: bool = True) -> list[str]:
    """Set every port of the bridge isolated (or not): isolated ports only reach the host."""
    changes = []
    for link in ipr.get_links():
        if link.get("master") != bridge_index:
            continue
        data = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA")
        if data is not None and bool(data.get("IFLA_BRPORT_ISOLATED")) == isolate:
            continue
        ipr.brport("set", index=link["index"], isolated=int(isolate))
        changes.append(f"{'isolated' if isolate else 'un-isolated'} bridge port {link.get('ifname')}")
    return changes


def _sync_neighbours(ipr, bridge_index: int, wanted: dict[str, str]) -> list[str]:
    """Permanent ARP entries ``ip -> mac`` on the bridge; ws's other permanent entries there are removed."""
    changes = []
    present = {
        entry.get("dst"): entry.get("lladdr")
        for entry in ipr.get_neighbours(family=socket.AF_INET, ifindex=bridge_index)
        if entry["state"] & _NUD_PERMANENT
    }
    for ip, mac in wanted.items():
        if present.get(ip) != mac:
            ipr.neigh("replace", dst=ip, lladdr=mac, ifindex=bridge_index, state="permanent")
            changes.append(f"pinned {ip} to {mac} on the bridge")
    for ip in present.keys() - wanted.keys():
        ipr.neigh("del", dst=ip, ifindex=bridge_index)
        changes.append(f"unpinned {ip}")
    return changes
