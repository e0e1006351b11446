"""The WireGuard interface (``piaw``): made in the host namespace, used from the VPN namespace.

The interface is created in the host's namespace with pyroute2, so the UDP socket that carries the encrypted
traffic lives there (where the uplink is), then moved into the VPN namespace and configured there through
pyroute2's WireGuard generic netlink (no wg-quick, no ``wg`` command): the private key, PIA's server as the one
peer (AllowedIPs 0.0.0.0/0, keepalive 25 s), the peer address, MTU, and the namespace's default route through
it. A renewal swaps key, peer and address on the same interface: the service workspaces' routes (via the
endpoint) never change.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ws.errors import WsError

if TYPE_CHECKING:
    from ws_plugin_pia.netns import InNetns
    from ws_plugin_pia.session import Session
    from ws_plugin_pia.topology import Layout

KEEPALIVE = 25
ALLOWED = "0.0.0.0/0"


@dataclass(frozen=True)
class TunnelConfig:
    """What the interface must hold for one PIA session (the private key is never printed: see repr)."""

    private_key: str
    peer_key: str
    endpoint: tuple[str, int]
    address: str
    mtu: int

    def __repr__(self) -> str:
        return f"TunnelConfig(peer_key={self.peer_key!r}, endpoint={self.endpoint!r}, address={self.address!r})"

    def peer(self) -> dict:
        """The peer as pyroute2's WireGuard ``set`` takes it."""
        return {
            "public_key": self.peer_key,
            "endpoint_addr": self.endpoint[0],
            "endpoint_port": self.endpoint[1],
            "persistent_keepalive": KEEPALIVE,
            "allowed_ips": [ALLOWED],
            "replace_allowed_ips": True,
        }


def config_for(session: Session, private_key: str, mtu: int) -> TunnelConfig:
    return TunnelConfig(private_key, session.server_key, (session.server_ip, session.server_port), session.peer_ip, mtu)


def ensure_interface(layout: Layout) -> list[str]:
    """Create ``piaw`` in the host namespace and move it into the VPN namespace, unless it is there."""
    from pyroute2 import IPRoute

    with IPRoute(netns=layout.namespace) as inner:
        if inner.link_lookup(ifname=layout.interface):
            return []
    with IPRoute() as host:
        if host.link_lookup(ifname=layout.interface):
            raise WsError(
                f"interface {layout.interface} exists in the host namespace; ws creates its own there and moves "
                "it into the VPN namespace at once: remove it or set pia.interface"
            )
        try:
            host.link("add", ifname=layout.interface, kind="wireguard")
        except Exception as exc:  # pyroute2 raises NetlinkError(95) when the kernel lacks WireGuard
            raise WsError(
                f"cannot create the WireGuard interface {layout.interface}: {exc} (a kernel without WireGuard?)"
            ) from None
        index = host.link_lookup(ifname=layout.interface)[0]
        host.link("set", index=index, net_ns_fd=layout.namespace)
    return [f"created {layout.interface} in the host namespace and moved it into {layout.namespace}"]


def configure(layout: Layout, inside: InNetns, wanted: TunnelConfig) -> list[str]:
    """Make the interface (already in the namespace) match ``wanted``: key, the one peer, address, MTU, up,
    default route. Cheap when it already does."""
    return inside.call(lambda: _configure(layout.interface, wanted))


def _configure(name: str, wanted: TunnelConfig) -> list[str]:
    from pyroute2 import IPRoute, WireGuard

    changes = []
    with WireGuard() as wg:
        device = wg.info(name)[0]
        current_key = _text(device.get_attr("WGDEVICE_A_PRIVATE_KEY"))
        peers = [_text(peer.get_attr("WGPEER_A_PUBLIC_KEY")) for peer in _peers(device)]
        if current_key != wanted.private_key or peers != [wanted.peer_key] or _endpoint(device) != wanted.endpoint:
            wg.set(name, private_key=wanted.private_key, peer=wanted.peer())
            for stale in peers:
                if stale != wanted.peer_key:
                    wg.set(name, peer={"public_key": stale, "remove": True})
            host, port = wanted.endpoint
            changes.append(f"{name}: key and peer {wanted.peer_key[:8]}... at {host}:{port}")
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=name)[0]
        addresses = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=socket.AF_INET)}
        if wanted.address not in addresses:
            ipr.addr("add", index=index, address=wanted.address, prefixlen=32)
            changes.append(f"{name}: address {wanted.address}")
        for stale in addresses - {wanted.address}:
            ipr.addr("del", index=index, address=stale, prefixlen=32)
        link = ipr.get_links(index)[0]
        if link.get_attr("IFLA_MTU") != wanted.mtu or not link["flags"] & 1:
            ipr.link("set", index=index, mtu=wanted.mtu, state="up")
            changes.append(f"{name}: up, MTU {wanted.mtu}")
        defaults = [r for r in ipr.get_routes(family=socket.AF_INET, table=254) if r["dst_len"] == 0]
        if [r.get_attr("RTA_OIF") for r in defaults] != [index]:
            ipr.route("replace", dst="0.0.0.0/0", oif=index)
            changes.append(f"default route through {name}")
    return changes


def _peers(device) -> list:
    return list(device.get_attr("WGDEVICE_A_PEERS") or [])


def _text(value) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _endpoint(device) -> tuple[str, int] | None:
    peers = _peers(device)
    if len(peers) != 1:
        return None
    endpoint = peers[0].get_attr("WGPEER_A_ENDPOINT")
    if not endpoint:
        return None
    return (endpoint.get("addr"), endpoint.get("port"))


@dataclass(frozen=True)
class Health:
    present: bool
    handshake_age: float | None
    """Seconds since the last handshake; None when there never was one."""
    rx_bytes: int = 0
    tx_bytes: int = 0


def health(layout: Layout, inside: InNetns) -> Health:
    return inside.call(lambda: _health(layout.interface))


def _health(name: str) -> Health:
    from pyroute2 import WireGuard

    try:
        with WireGuard() as wg:
            device = wg.info(name)[0]
    except Exception:
        return Health(present=False, handshake_age=None)
    peers = _peers(device)
    if not peers:
        return Health(present=True, handshake_age=None)
    peer = peers[0]
    stamp = peer.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME") or {}
    seconds = stamp.get("tv_sec", 0) if isinstance(stamp, dict) else 0
    age = None if not seconds else max(0.0, time.time() - seconds)
    rx = peer.get_attr("WGPEER_A_RX_BYTES") or 0
    tx = peer.get_attr("WGPEER_A_TX_BYTES") or 0
    return Health(present=True, handshake_age=age, rx_bytes=rx, tx_bytes=tx)
