"""Which region and WireGuard server to use.

``auto`` follows PIA's own scripts: among the eligible regions (not offline; offering port forwarding when
it is wanted; geo-located ones only when allowed) the one whose meta server accepts a TCP connection on
443 fastest, each probe capped at ``latency_timeout``. The WireGuard server is a random one of the region.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ws_plugin_pia.serverlist import Region, Server, ServerList
from ws_plugin_pia.transport import PiaError

META_PORT = 443
Probe = Callable[[Region], float | None]


@dataclass(frozen=True)
class Choice:
    region: Region
    server: Server
    latency: float | None
    """Seconds the meta server took to accept (None when the region was configured, not measured)."""


def eligible(regions: Iterable[Region], port_forward: bool, allow_geo: bool) -> list[Region]:
    return [
        region
        for region in regions
        if not region.offline
        and region.wg
        and (region.port_forward or not port_forward)
        and (allow_geo or not region.geo)
    ]


def tcp_probe(timeout: float, port: int = META_PORT) -> Probe:
    """Seconds a TCP connect to the region's first meta server takes, None if it fails or is too slow."""

    def probe(region: Region) -> float | None:
        if not region.meta:
            return None
        start = time.monotonic()
        try:
            with socket.create_connection((region.meta[0].ip, port), timeout=timeout):
                return time.monotonic() - start
        except OSError:
            return None

    return probe


def measure(regions: list[Region], probe: Probe) -> dict[str, float | None]:
    """Every region probed in parallel (a few dozen at most), so auto costs one timeout, not one per region."""
    if not regions:
        return {}
    with ThreadPoolExecutor(max_workers=min(32, len(regions))) as pool:
        return dict(zip((r.id for r in regions), pool.map(probe, regions), strict=True))


def fastest(regions: list[Region], latencies: dict[str, float | None]) -> tuple[Region, float] | None:
    answered = [(latencies[r.id], r) for r in regions if latencies.get(r.id) is not None]
    if not answered:
        return None
    latency, region = min(answered, key=lambda pair: pair[0])
    return region, latency


def choose(
    server_list: ServerList,
    region_id: str,
    port_forward: bool,
    allow_geo: bool,
    probe: Probe,
    rng: random.Random | None = None,
) -> Choice:
    """The configured region (checked against the wishes), or ``auto``'s fastest eligible one."""
    rng = rng or random.Random()
    if region_id != "auto":
        region = server_list.region(region_id)
        if region.offline:
            raise PiaError(f"PIA region {region_id!r} is offline (pia.region)")
        if port_forward and not region.port_forward:
            raise PiaError(f"PIA region {region_id!r} does not forward ports (pia.region, pia.port_forward)")
        if not region.wg:
            raise PiaError(f"PIA region {region_id!r} has no WireGuard servers (pia.region)")
        return Choice(region, rng.choice(region.wg), None)
    candidates = eligible(server_list.regions, port_forward, allow_geo)
    if not candidates:
        raise PiaError("no PIA region qualifies for pia.region = 'auto' (all offline, geo or without port forwarding)")
    best = fastest(candidates, measure(candidates, probe))
    if best is None:
        raise PiaError(
            f"no eligible PIA region's meta server answered within pia.latency_timeout ({len(candidates)} tried)"
        )
    region, latency = best
    return Choice(region, rng.choice(region.wg), latency)
