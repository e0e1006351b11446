"""The sandbox firewall: two nftables tables that ws owns, replaced atomically as a whole.

Every rule lives in ``table inet ws-<bridge>`` (IP layer: host input, forwarding, NAT) and
``table bridge ws-<bridge>`` (link layer: each workspace port bound to its MAC and address, no frames
between workspaces); both are written with one ``nft -f -`` transaction (create-if-missing, delete,
re-create), so the rules are never half applied and no other table is ever read for writing, flushed or
deleted. What keeps guests in when someone flushes the whole ruleset is in :mod:`ws.network.failsafe`
and :mod:`ws.network.guard`.
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
DNS_PORT = 53

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
FAMILIES = ("inet", "bridge")


@dataclass(frozen=True)
class PortBinding:
    """One workspace's bridge port: the only MAC and IPv4 address frames arriving on it may carry."""

    interface: str
    mac: str
    ip: ipaddress.IPv4Address


@dataclass(frozen=True)
class FirewallSpec:
    """Everything the rules depend on."""

    bridge: str
    subnet: ipaddress.IPv4Network
    host_address: ipaddress.IPv4Address
    upstream: str
    block_lan: bool
    ports: tuple[PortBinding, ...] = ()
    """Every configured workspace of this network, running or not (rules on absent ports are inert)."""
    guest_to_guest: bool = False

    @property
    def table(self) -> str:
        return table_for(self.bridge)


def table_for(bridge: str) -> str:
    """ws's tables for a bridge (``inet`` and ``bridge`` family): named after it so that several
    configurations can coexist."""
    return f"ws-{bridge}"


def render(spec: FirewallSpec) -> str:
    """The ``nft -f`` script that replaces ws's two tables with the rules for ``spec`` in one transaction.

    ``table inet``: what the host accepts from the bridge and forwards for it (IP layer). ``table bridge``:
    each port may only send its own workspace's MAC and address, and (unless ``guest_to_guest``) frames
    between two workspace ports are dropped. The bridge family sees every frame whether or not
    ``br_netfilter`` hands bridged traffic to the IP hooks.
    """
    for name in (spec.bridge, spec.upstream, *(port.interface for port in spec.ports)):
        if not _NAME.match(name):
            raise WsError(f"interface name {name!r} cannot be used in firewall rules; use letters, digits, '_.-'")
    for port in spec.ports:
        if not _MAC.match(port.mac):
            raise WsError(f"{port.mac!r} is not a MAC address")
    lines = []
    for family in FAMILIES:
        lines += [f"table {family} {spec.table} {{}}", f"delete table {family} {spec.table}"]
    return "\n".join([*lines, *_inet_table(spec), *_bridge_table(spec)]) + "\n"


def _inet_table(spec: FirewallSpec) -> list[str]:
    br, host, subnet, upstream = f'"{spec.bridge}"', spec.host_address, spec.subnet, f'"{spec.upstream}"'
    lines = [
        f"table inet {spec.table} {{",
        f'\tcomment "managed by ws: sandbox network on bridge {spec.bridge}"',
    ]
    if spec.block_lan:
        lines += [
            f"\tset lan4 {{ type ipv4_addr; flags interval; elements = {{ {', '.join(LAN_V4)} }}; }}",
        ]
    lines += [
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy accept;",
        f'\t\tiifname != {{ {br}, "lo" }} ip daddr {host} drop',  # the bridge address is not the LAN's
        f"\t\tiifname {br} ip saddr != {subnet} drop",
        f"\t\tiifname {br} meta nfproto ipv6 drop",
        f"\t\tiifname {br} ct state established,related accept",
        f"\t\tiifname {br} ip daddr {host} udp dport {DNS_PORT} accept",
        f"\t\tiifname {br} ip daddr {host} tcp dport {DNS_PORT} accept",
        f"\t\tiifname {br} ip daddr {host} icmp type echo-request accept",
        f"\t\tiifname {br} drop",
        "\t}",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        f"\t\tiifname {br} ip saddr != {subnet} drop",
        f"\t\tiifname {br} meta nfproto ipv6 drop",
    ]
    if spec.guest_to_guest:
        lines.append(f"\t\tiifname {br} oifname {br} ip daddr {subnet} accept")
    lines.append(f"\t\tiifname {br} oifname != {upstream} drop")
    if spec.block_lan:
        lines.append(f"\t\tiifname {br} ip daddr @lan4 drop")
    lines += [
        f"\t\toifname {br} ct state established,related accept",
        f"\t\toifname {br} drop",
        "\t}",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        f"\t\tip saddr {subnet} oifname {upstream} masquerade",
        "\t}",
        "}",
    ]
    return lines


def _bridge_table(spec: FirewallSpec) -> list[str]:
    lines = [f"table bridge {spec.table} {{", f'\tcomment "managed by ws: workspace ports of bridge {spec.bridge}"']
    if not spec.ports:
        return [*lines, "}"]
    ports = ", ".join(f'"{port.interface}"' for port in spec.ports)
    jumps = ", ".join(f'"{port.interface}" : jump port{n}' for n, port in enumerate(spec.ports))
    lines += [
        f"\tset ports {{ type ifname; elements = {{ {ports} }}; }}",
        "\tchain prerouting {",
        "\t\ttype filter hook prerouting priority filter; policy accept;",
        f"\t\tiifname vmap {{ {jumps} }}",
        "\t}",
    ]
    for n, port in enumerate(spec.ports):
        lines += [
            f"\tchain port{n} {{",
            f"\t\tether saddr != {port.mac} drop",
            f"\t\tarp saddr ether != {port.mac} drop",
            f"\t\tarp saddr ip != {port.ip} drop",
            "\t\tether type arp accept",
            f"\t\tip saddr != {port.ip} drop",
            "\t\tether type ip accept",
            "\t\tdrop",  # IPv6 (router advertisements), VLAN tags, any other protocol
            "\t}",
        ]
    if not spec.guest_to_guest:
        lines += [
            "\tchain forward {",
            "\t\ttype filter hook forward priority filter; policy accept;",
            "\t\tiifname @ports drop",  # frames a workspace sends to another port (unicast and flooded)
            "\t}",
        ]
    return [*lines, "}"]


def apply(script: str) -> None:
    """Run one ``nft -f -`` transaction; nothing is applied when any line fails."""
    _nft(["-f", "-"], stdin=script)


def listing(table: str, families: tuple[str, ...] = FAMILIES) -> str | None:
    """ws's tables named ``table`` (by default its two, ``inet`` and ``bridge``) as nft lists them, or None
    when one of them does not exist; another failure of nft is an error.

    One ``nft list`` per table: nft 1.0.6 fails a second ``list table`` of the same name in one ``-f`` script.
    They run at once: every ``ws up`` waits for this check before its guests start.
    """
    texts = []
    results = run_all([[NFT, "list", "table", family, table] for family in families])
    for family, result in zip(families, results, strict=True):
        if result.returncode != 0:
            if "No such file or directory" in result.stderr:
                return None
            raise WsError(f"nft list table {family} {table} failed: {result.stderr.strip()}")
        texts.append(result.stdout)
    return "".join(texts)


def table_names() -> list[str]:
    """Names of all ``inet`` tables (read only, to see whether other ws tables exist)."""
    result = run([NFT, "list", "tables", "inet"])
    if result.returncode != 0:
        raise WsError(f"nft list tables failed: {result.stderr.strip()}")
    return [line.split()[2] for line in result.stdout.splitlines() if line.startswith("table inet ")]


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def rule_count(table: str) -> int:
    """Number of rules in ws's tables (0 when absent), from nft's JSON output."""
    total = 0
    for family in FAMILIES:
        result = run([NFT, "-j", "list", "table", family, table])
        if result.returncode == 0:
            total += sum(1 for item in json.loads(result.stdout)["nftables"] if "rule" in item)
    return total


def remove(table: str) -> list[str]:
    """Delete ws's tables if present (in one transaction); never touches any other table."""
    present = [family for family in FAMILIES if run([NFT, "list", "table", family, table]).returncode == 0]
    if not present:
        return []
    apply("".join(f"delete table {family} {table}\n" for family in present))
    return [f"deleted nftables table {family} {table}" for family in present]


def _nft(args: list[str], stdin: str | None = None) -> None:
    result = run([NFT, *args], stdin)
    if result.returncode != 0:
        raise WsError(f"nft {' '.join(args)} failed: {result.stderr.strip()}")


def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise WsError("the nft command is missing; install the nftables package") from None


def run_all(argvs: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """Run the read-only commands at the same time; their results in the same order."""
    processes: list[subprocess.Popen] = []
    try:
        for argv in argvs:
            pipe = subprocess.PIPE
            processes.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=pipe, stderr=pipe, text=True))
    except FileNotFoundError:
        raise WsError("the nft command is missing; install the nftables package") from None
    finally:
        outputs = [process.communicate() for process in processes]  # none left unreaped, whatever happened
    return [
        subprocess.CompletedProcess(p.args, p.returncode, *output) for p, output in zip(processes, outputs, strict=True)
    ]
