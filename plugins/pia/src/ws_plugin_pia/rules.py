"""The VPN network's nftables rules, rendered as ``nft -f`` scripts that replace one table atomically.

Two tables, both owned by the plugin and never touching anything else:

* on the host, ``inet ws-pia-<bridge>``: nothing from the bridge is forwarded anywhere, nothing from the
  bridge reaches the host except replies to connections the host opened (ssh, ``ws exec``), no IPv6;
* in the VPN namespace, ``inet ws-pia``: forward only bridge -> tunnel (and what answers it), masquerade out
  of the tunnel, TCP MSS clamped to the tunnel's path MTU, DNS on the endpoint address, the forwarded port's
  DNAT, everything else (IPv6 included) dropped.

The host table is a second line of defence: the topology itself gives the bridge no way out (no
masquerade, a policy route that blackholes whatever arrives from it, see :mod:`ws_plugin_pia.topology`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from ws.errors import WsError

ENDPOINT_TABLE = "ws-pia"
DNS_PORT = 53
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def host_table(bridge: str) -> str:
    return f"ws-pia-{bridge}"


@dataclass(frozen=True)
class Dnat:
    """The forwarded port's destination inside the VPN network."""

    port: int
    target: IPv4Address
    target_port: int
    protocols: tuple[str, ...]
    """``("tcp",)``, ``("udp",)`` or both."""


def _names(*names: str) -> None:
    for name in names:
        if not _NAME.match(name):
            raise WsError(f"interface name {name!r} cannot be used in firewall rules; use letters, digits, '_.-'")


def _replace(family_table: str) -> list[str]:
    """Create-if-missing then delete: the following definition replaces the table in the same transaction."""
    return [f"table {family_table} {{}}", f"delete table {family_table}"]


def render_host(bridge: str) -> str:
    """The host's table for the VPN bridge (no masquerade anywhere)."""
    _names(bridge)
    table, br = f"inet {host_table(bridge)}", f'"{bridge}"'
    lines = [
        *_replace(table),
        f"table {table} {{",
        f'\tcomment "managed by ws: VPN network on bridge {bridge}; nothing leaves it except through the tunnel"',
        "\tchain input {",
        "\t\ttype filter hook input priority filter - 10; policy accept;",
        f"\t\tiifname {br} meta nfproto ipv6 drop",
        f"\t\tiifname {br} ct state established,related accept",
        f"\t\tiifname {br} drop",
        "\t}",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter - 10; policy accept;",
        f"\t\tiifname {br} meta nfproto ipv6 drop",
        f"\t\toifname {br} meta nfproto ipv6 drop",
        f"\t\tiifname {br} oifname != {br} drop",
        f"\t\toifname {br} iifname != {br} drop",
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_endpoint(lan: str, tunnel: str, subnet: IPv4Network, endpoint: IPv4Address, dnat: Dnat | None = None) -> str:
    """The VPN namespace's table: ``lan`` is its leg on the bridge, ``tunnel`` the WireGuard interface."""
    _names(lan, tunnel)
    table, lan_q, wg = f"inet {ENDPOINT_TABLE}", f'"{lan}"', f'"{tunnel}"'
    prerouting: list[str] = []
    forward_in: list[str] = []
    if dnat is not None:
        for protocol in dnat.protocols:
            prerouting.append(
                f"\t\tiifname {wg} {protocol} dport {dnat.port} dnat ip to {dnat.target}:{dnat.target_port}"
            )
            forward_in.append(
                f"\t\tiifname {wg} oifname {lan_q} ip daddr {dnat.target} {protocol} dport {dnat.target_port} "
                "ct status dnat accept"
            )
    lines = [
        *_replace(table),
        f"table {table} {{",
        '\tcomment "managed by ws: the VPN endpoint; the only way out is the tunnel"',
        "\tchain prerouting {",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;",
        *prerouting,
        "\t}",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        f"\t\toifname {wg} masquerade",
        "\t}",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy drop;",
        "\t\tmeta nfproto ipv6 drop",
        '\t\tiifname "lo" accept',
        "\t\tct state established,related accept",
        f"\t\tiifname {lan_q} ip saddr {subnet} ip daddr {endpoint} udp dport {DNS_PORT} accept",
        f"\t\tiifname {lan_q} ip saddr {subnet} ip daddr {endpoint} tcp dport {DNS_PORT} accept",
        f"\t\tiifname {lan_q} ip saddr {subnet} ip daddr {endpoint} icmp type echo-request accept",
        "\t}",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy drop;",
        "\t\tmeta nfproto ipv6 drop",
        f"\t\toifname {wg} tcp flags syn / syn,rst tcp option maxseg size set rt mtu",
        f"\t\tiifname {lan_q} oifname {wg} ip saddr {subnet} accept",
        f"\t\tiifname {wg} oifname {lan_q} ct state established,related accept",
        *forward_in,
        "\t}",
        "\tchain output {",
        "\t\ttype filter hook output priority filter; policy drop;",
        "\t\tmeta nfproto ipv6 drop",
        '\t\toifname "lo" accept',
        f"\t\toifname {wg} accept",
        f"\t\toifname {lan_q} ip saddr {endpoint} ip daddr {subnet} ct state established,related accept",
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"
