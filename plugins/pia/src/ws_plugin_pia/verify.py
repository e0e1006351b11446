"""``ws vpn verify``: the leak test as a command for users.

From the VPN endpoint's namespace (and, with ``--workspace``, from inside a service workspace): the exit address
seen by ``pia.verify_url`` through the tunnel differs from the host's own; DNS on the endpoint answers (its only
upstream is the tunnel); IPv6 is off on the bridge and in the namespace; with the tunnel interface down nothing
gets out (the interface is brought back up and reconfigured afterwards).
"""

from __future__ import annotations

import socket
import struct
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ws_plugin_pia import netns, network, tunnel

if TYPE_CHECKING:
    from ws.api import Context

    from ws_plugin_pia.settings import PiaSettings

TIMEOUT = 8.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def fetch(url: str, timeout: float = TIMEOUT) -> str | None:
    """The body of ``url`` (stripped), or None when it cannot be fetched."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the user's own URL)
            return response.read(200).decode(errors="replace").strip()
    except OSError:
        return None


def dns_answers(server: str, name: str, timeout: float = TIMEOUT) -> list[str]:
    """A minimal A query to ``server``: the addresses answered (empty when none)."""
    query = struct.pack(">HHHHHH", 0x5753, 0x0100, 1, 0, 0, 0)
    query += b"".join(bytes([len(part)]) + part.encode() for part in name.rstrip(".").split(".")) + b"\0"
    query += struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(query, (server, 53))
            reply = sock.recv(1500)
        except OSError:
            return []
    count = struct.unpack(">H", reply[6:8])[0]
    found, offset = [], len(query)
    for _ in range(count):
        if offset + 12 > len(reply):
            break
        offset += 2 if reply[offset] & 0xC0 == 0xC0 else reply.index(b"\0", offset) + 1 - offset
        kind, _cls, _ttl, length = struct.unpack(">HHIH", reply[offset : offset + 10])
        offset += 10
        if kind == 1 and length == 4:
            found.append(socket.inet_ntoa(reply[offset : offset + 4]))
        offset += length
    return found


def run(ctx: Context, settings: PiaSettings, workspace_name: str | None) -> list[Check]:
    layout = network.layout_of(settings)
    if not netns.exists(layout.namespace):
        return [Check("vpn network", False, f"namespace {layout.namespace} does not exist (ws network up vpn)")]
    checks = []
    with netns.InNetns(layout.namespace) as inside:
        through = inside.call(lambda: fetch(settings.verify_url))
        host = fetch(settings.verify_url)
        checks.append(
            Check(
                "exit address",
                through is not None and through != host,
                f"through the tunnel {through or 'no answer'}, from the host {host or 'no answer'}",
            )
        )
        answers = dns_answers(str(layout.endpoint_address), settings.wait_for_name)
        name = settings.wait_for_name
        checks.append(Check("dns through the tunnel", bool(answers), f"{name} -> {answers or 'no answer'}"))
        bridge_v6 = Path(f"/proc/sys/net/ipv6/conf/{layout.bridge}/disable_ipv6")
        ns_v6 = inside.call(lambda: Path("/proc/sys/net/ipv6/conf/all/disable_ipv6").read_text().strip())
        v6_off = bridge_v6.exists() and bridge_v6.read_text().strip() == "1" and ns_v6 == "1"
        where = f"on {layout.bridge} and in {layout.namespace}"
        checks.append(Check("ipv6 blocked", v6_off, f"off {where}" if v6_off else f"not off {where}"))
        target = network.target_ip_of(settings, ctx.config.workspaces)
        paths = network.paths_of(ctx)
        checks.append(_tunnel_down(settings, layout, inside, lambda: network.converge_tunnel(settings, paths, target)))
    if workspace_name is not None:
        checks += _from_workspace(ctx, settings, workspace_name)
    return checks


def _tunnel_down(settings: PiaSettings, layout, inside: netns.InNetns, restore: Callable[[], object]) -> Check:
    """Take ``piaw`` down, try to get out from the namespace, bring it back with its configuration."""
    from pyroute2 import IPRoute

    def set_state(state: str) -> None:
        with IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=layout.interface)[0], state=state)

    inside.call(lambda: set_state("down"))
    try:
        leaked = inside.call(lambda: fetch(settings.verify_url, timeout=3.0))
    finally:
        inside.call(lambda: set_state("up"))
        restore()
    health = tunnel.health(layout, inside)
    return Check(
        "nothing gets out without the tunnel",
        leaked is None,
        "no answer with the tunnel down" + ("" if health.present else "; the tunnel did not come back")
        if leaked is None
        else f"got {leaked!r} with the tunnel down",
    )


def _from_workspace(ctx: Context, settings: PiaSettings, name: str) -> list[Check]:
    workspace = ctx.workspace(name)
    backend = ctx.backend(workspace)
    url = settings.verify_url
    out = backend.exec(["sh", "-c", f"curl -fsS -m 8 {url} >/dev/null"], False)
    v6 = backend.exec(["sh", "-c", "curl -6 -fsS -m 4 http://[2001:db8::1]/ >/dev/null"], False)
    return [
        Check(f"{name} gets out through the tunnel", out == 0, f"curl {url} exited {out}"),
        Check(f"{name} has no IPv6 way out", v6 != 0, f"curl -6 exited {v6}"),
    ]
