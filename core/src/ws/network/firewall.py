"""The sandbox firewall: one nftables table that ws owns, replaced atomically as a whole.

Every rule lives in ``table inet ws-<bridge>``; the table is written with ``nft -f -`` in a single
transaction (create-if-missing, delete, re-create), so the rules are never half applied and no other table
is ever read for writing, flushed or deleted.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import subprocess
from dataclasses import dataclass

from ws.errors import WsError

NFT = "nft"

LAN_V4 = (
    "0.0.0.0/8",  # "this" network
    "10.0.0.0/8",  # RFC 1918
    "100.64.0.0/10",  # carrier-grade NAT (often a provider's or Tailscale's private range)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local, cloud metadata services
    "172.16.0.0/12",  # RFC 1918
    "192.0.0.0/24",  # IETF protocol assignments
    "192.168.0.0/16",  # RFC 1918
    "198.18.0.0/15",  # benchmarking, used by some appliances on LANs
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved and limited broadcast
)
LAN_V6 = (
    "::/128",
    "::1/128",
    "::ffff:0:0/96",  # IPv4-mapped: would smuggle the ranges above
    "fc00::/7",  # unique local
    "fe80::/10",  # link-local
    "ff00::/8",  # multicast
)
DNS_PORT = 53

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class FirewallSpec:
    """Everything the rules depend on."""

    bridge: str
    subnet: ipaddress.IPv4Network
    host_address: ipaddress.IPv4Address
    upstream: str
    block_lan: bool

    @property
    def table(self) -> str:
        return table_for(self.bridge)


def table_for(bridge: str) -> str:
    """ws's table for a bridge: named after it so that several configurations can coexist."""
    return f"ws-{bridge}"


def render(spec: FirewallSpec) -> str:
    """The ``nft -f`` script that replaces ws's table with the rules for ``spec`` in one transaction."""
    for name in (spec.bridge, spec.upstream):
        if not _NAME.match(name):
            raise WsError(f"interface name {name!r} cannot be used in firewall rules; use letters, digits, '_.-'")
    br, host = f'"{spec.bridge}"', spec.host_address
    lines = [
        f"table inet {spec.table} {{}}",
        f"delete table inet {spec.table}",
        f"table inet {spec.table} {{",
        f'\tcomment "managed by ws: sandbox network on bridge {spec.bridge}"',
    ]
    if spec.block_lan:
        lines += [
            f"\tset lan4 {{ type ipv4_addr; flags interval; elements = {{ {', '.join(LAN_V4)} }}; }}",
            f"\tset lan6 {{ type ipv6_addr; flags interval; elements = {{ {', '.join(LAN_V6)} }}; }}",
            "\tchain input {",
            "\t\ttype filter hook input priority filter; policy accept;",
            f"\t\tiifname {br} ct state established,related accept",
            f"\t\tiifname {br} ip daddr {host} udp dport {DNS_PORT} accept",
            f"\t\tiifname {br} ip daddr {host} tcp dport {DNS_PORT} accept",
            f"\t\tiifname {br} ip daddr {host} icmp type echo-request accept",
            f"\t\tiifname {br} drop",
            "\t}",
        ]
    lines += [
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
    ]
    if spec.block_lan:
        lines += [
            f"\t\tiifname {br} ip daddr @lan4 drop",
            f"\t\tiifname {br} ip6 daddr @lan6 drop",
        ]
    lines += [
        f"\t\toifname {br} ct state established,related accept",
        f"\t\toifname {br} iifname != {br} drop",
        "\t}",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        f'\t\tip saddr {spec.subnet} oifname "{spec.upstream}" masquerade',
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def apply(script: str) -> None:
    """Run one ``nft -f -`` transaction; nothing is applied when any line fails."""
    _nft(["-f", "-"], stdin=script)


def listing(table: str) -> str | None:
    """``nft list table inet TABLE`` as text, or None when the table does not exist."""
    result = _run([NFT, "list", "table", "inet", table])
    if result.returncode == 0:
        return result.stdout
    if "No such file or directory" in result.stderr:
        return None
    raise WsError(f"nft list table inet {table} failed: {result.stderr.strip()}")


def table_names() -> list[str]:
    """Names of all ``inet`` tables (read only, to see whether other ws tables exist)."""
    result = _run([NFT, "list", "tables", "inet"])
    if result.returncode != 0:
        raise WsError(f"nft list tables failed: {result.stderr.strip()}")
    return [line.split()[2] for line in result.stdout.splitlines() if line.startswith("table inet ")]


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def rule_count(table: str) -> int:
    """Number of rules in the table (0 when absent), from nft's JSON output."""
    result = _run([NFT, "-j", "list", "table", "inet", table])
    if result.returncode != 0:
        return 0
    return sum(1 for item in json.loads(result.stdout)["nftables"] if "rule" in item)


def remove(table: str) -> list[str]:
    """Delete ws's table if present; never touches any other table."""
    if listing(table) is None:
        return []
    _nft(["delete", "table", "inet", table])
    return [f"deleted nftables table inet {table}"]


def _nft(args: list[str], stdin: str | None = None) -> None:
    result = _run([NFT, *args], stdin)
    if result.returncode != 0:
        raise WsError(f"nft {' '.join(args)} failed: {result.stderr.strip()}")


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise WsError("the nft command is missing; install the nftables package") from None
