"""Region choice: offline, geo and port-forwarding rules, latency order, the configured region."""

from __future__ import annotations

import random

import pytest
from ws_plugin_pia import regions, serverlist
from ws_plugin_pia.transport import PiaError
from ws_testing.fake_pia import FakePia


def _region(rid: str, pf: bool = True, geo: bool = False, offline: bool = False, wg: int = 2) -> serverlist.Region:
    servers = tuple(serverlist.Server(f"192.0.2.{n}", f"{rid}{n}") for n in range(wg))
    meta = (serverlist.Server("198.51.100.1", f"{rid}-meta"),)
    return serverlist.Region(rid, rid, "XX", "", pf, geo, offline, meta, servers)


LIST = serverlist.ServerList(
    (
        _region("near_us", pf=False),
        _region("mid_geo", geo=True),
        _region("far_ok"),
        _region("nearest_offline", offline=True),
        _region("mid_ok"),
        _region("empty", wg=0),
    ),
    1337,
    False,
)
LATENCY = {"near_us": 0.001, "mid_geo": 0.002, "far_ok": 0.040, "nearest_offline": 0.0001, "mid_ok": 0.010, "empty": 0}


def probe(region: serverlist.Region) -> float | None:
    return LATENCY.get(region.id)


def test_eligible_skips_offline_and_serverless() -> None:
    ids = [r.id for r in regions.eligible(LIST.regions, port_forward=False, allow_geo=True)]
    assert ids == ["near_us", "mid_geo", "far_ok", "mid_ok"]


def test_eligible_port_forwarding_only() -> None:
    ids = [r.id for r in regions.eligible(LIST.regions, port_forward=True, allow_geo=True)]
    assert ids == ["mid_geo", "far_ok", "mid_ok"]


def test_eligible_geo_only_when_allowed() -> None:
    ids = [r.id for r in regions.eligible(LIST.regions, port_forward=False, allow_geo=False)]
    assert "mid_geo" not in ids and "near_us" in ids


@pytest.mark.parametrize(
    ("port_forward", "allow_geo", "expected"),
    [(False, True, "near_us"), (True, True, "mid_geo"), (True, False, "mid_ok"), (False, False, "near_us")],
)
def test_auto_picks_fastest_eligible(port_forward: bool, allow_geo: bool, expected: str) -> None:
    choice = regions.choose(LIST, "auto", port_forward, allow_geo, probe, random.Random(1))
    assert choice.region.id == expected
    assert choice.latency == LATENCY[expected]
    assert choice.server in choice.region.wg


def test_auto_skips_regions_that_do_not_answer() -> None:
    def partial(region: serverlist.Region) -> float | None:
        return None if region.id in ("mid_ok", "mid_geo") else LATENCY[region.id]

    assert regions.choose(LIST, "auto", True, True, partial).region.id == "far_ok"


def test_auto_without_any_answer_is_an_error() -> None:
    with pytest.raises(PiaError, match="latency_timeout.*3 tried"):
        regions.choose(LIST, "auto", True, True, lambda _region: None)


def test_auto_without_candidates_is_an_error() -> None:
    only_us = serverlist.ServerList((_region("us", pf=False),), 1337, False)
    with pytest.raises(PiaError, match="no PIA region qualifies"):
        regions.choose(only_us, "auto", True, False, probe)


def test_server_is_random_within_region() -> None:
    chosen = {regions.choose(LIST, "far_ok", False, False, probe, random.Random(seed)).server.cn for seed in range(20)}
    assert chosen == {"far_ok0", "far_ok1"}


def test_configured_region_is_used_without_probing() -> None:
    def never(_region: serverlist.Region) -> float | None:
        raise AssertionError("a configured region is not probed")

    choice = regions.choose(LIST, "mid_geo", True, False, never)  # geo is no obstacle when chosen explicitly
    assert choice.region.id == "mid_geo" and choice.latency is None


@pytest.mark.parametrize(
    ("region", "port_forward", "message"),
    [
        ("nearest_offline", False, "is offline"),
        ("near_us", True, "does not forward ports"),
        ("empty", False, "no WireGuard servers"),
        ("atlantis", False, "no region 'atlantis'"),
    ],
)
def test_configured_region_must_fit(region: str, port_forward: bool, message: str) -> None:
    with pytest.raises(PiaError, match=message):
        regions.choose(LIST, region, port_forward, False, probe)


def test_tcp_probe_measures_listening_meta_servers(fake: FakePia) -> None:
    """Real TCP connects to the fake's meta listeners: online regions answer, the offline one does not."""
    servers = serverlist.parse(fake.serverlist_body())
    measured = regions.measure(list(servers.regions), regions.tcp_probe(1.0, fake.spec.meta_port))
    assert measured["gone"] is None
    assert all(measured[rid] is not None and measured[rid] < 1.0 for rid in ("swiss", "de_berlin", "us_east"))
    choice = regions.choose(servers, "auto", True, False, regions.tcp_probe(1.0, fake.spec.meta_port))
    assert choice.region.id in ("swiss", "de_berlin")
