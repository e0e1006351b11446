"""Parsing every shape of server list reply, and the signature check."""

from __future__ import annotations

import base64
import json

import pytest
from ws_plugin_pia import serverlist
from ws_plugin_pia.transport import PiaError
from ws_testing.fake_pia import FakePia, RegionSpec, Spec, WgServer


@pytest.fixture(scope="module")
def fake() -> FakePia:
    """Never started: only its list rendering and signing key are used."""
    regions = [
        RegionSpec("swiss", "Switzerland", meta=[("192.0.2.1", "zurich-meta")],
                   wg=[WgServer("192.0.2.10", "zurich401", "10.0.0.1")]),
        RegionSpec("us_east", "US East", port_forward=False, meta=[("192.0.2.2", "nj-meta")],
                   wg=[WgServer("192.0.2.11", "nj402", "10.0.0.2")]),
    ]  # fmt: skip
    return FakePia(Spec("u", "p", regions))


def test_signed_list_parses_into_typed_regions(fake: FakePia) -> None:
    servers = serverlist.parse(fake.serverlist_body(), fake.list_public_key_pem)
    assert servers.signed and servers.wg_port == 1337
    swiss = servers.region("swiss")
    assert swiss.port_forward and not swiss.geo and not swiss.offline
    assert swiss.wg == (serverlist.Server("192.0.2.10", "zurich401"),)
    assert swiss.meta[0].cn == "zurich-meta"
    assert not servers.region("us_east").port_forward


def test_unsigned_parse_without_key(fake: FakePia) -> None:
    assert not serverlist.parse(fake.serverlist_body(tamper=True)).signed


def test_tampered_list_refused_with_key(fake: FakePia) -> None:
    with pytest.raises(PiaError, match="signature does not verify"):
        serverlist.parse(fake.serverlist_body(tamper=True), fake.list_public_key_pem)


def test_missing_or_garbled_signature_refused(fake: FakePia) -> None:
    line = fake.serverlist_body().split(b"\n")[0]
    with pytest.raises(PiaError, match="no readable signature"):
        serverlist.parse(line + b"\n\n", fake.list_public_key_pem)
    with pytest.raises(PiaError, match="no readable signature"):
        serverlist.parse(line + b"\n\n!!not base64!!\n", fake.list_public_key_pem)


def test_bad_public_key_file(fake: FakePia) -> None:
    with pytest.raises(PiaError, match="not a PEM public key"):
        serverlist.parse(fake.serverlist_body(), b"garbage")


def test_unknown_region_lists_known(fake: FakePia) -> None:
    with pytest.raises(PiaError, match="no region 'mars'.*swiss, us_east"):
        serverlist.parse(fake.serverlist_body()).region("mars")


def _body(data: object) -> bytes:
    line = json.dumps(data).encode()
    return line + b" " * (1100 - len(line)) + b"\n\n" + base64.b64encode(b"x") + b"\n"


GOOD_REGION = {
    "id": "swiss", "name": "Switzerland", "country": "CH", "dns": "swiss.privacy.network", "port_forward": True,
    "geo": False, "offline": False, "servers": {"meta": [{"ip": "192.0.2.1", "cn": "m"}],
                                                "wg": [{"ip": "192.0.2.2", "cn": "w"}]},
}  # fmt: skip
GROUPS = {"wg": [{"name": "wireguard", "ports": [1337]}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "only 0 bytes"),
        (b'{"regions": []}', "only 15 bytes"),
        (b"<html>" + b"x" * 1200, "not valid JSON"),
        (_body([1, 2]), "not a JSON object"),
        (_body({"groups": GROUPS}), "has no regions"),
        (_body({"groups": GROUPS, "regions": []}), "has no regions"),
        (_body({"groups": GROUPS, "regions": ["swiss"]}), r"regions\[0\] is not an object"),
        (_body({"groups": GROUPS, "regions": [{**GOOD_REGION, "id": 5}]}), r"regions\[0\]\.id is missing"),
        (_body({"groups": GROUPS, "regions": [{**GOOD_REGION, "port_forward": "yes"}]}), r"\(swiss\)\.port_forward"),
        (_body({"groups": GROUPS, "regions": [{**GOOD_REGION, "servers": None}]}), r"servers is missing"),
        (
            _body({"groups": GROUPS, "regions": [{**GOOD_REGION, "servers": {"wg": [{"ip": "192.0.2.2"}]}}]}),
            r"servers\.wg\[0\] needs ip and cn",
        ),
        (_body({"groups": GROUPS, "regions": [{**GOOD_REGION, "servers": {"wg": {}}}]}), r"servers\.wg is not a list"),
        (_body({"regions": [GOOD_REGION]}), r"no WireGuard port"),
        (_body({"groups": {"wg": [{"ports": ["1337"]}]}, "regions": [GOOD_REGION]}), "invalid WireGuard port"),
    ],
)
def test_malformed_lists_are_refused_with_a_sentence(body: bytes, message: str) -> None:
    with pytest.raises(PiaError, match=message):
        serverlist.parse(body)


def test_optional_region_fields_default() -> None:
    minimal = {"id": "x", "name": "X", "servers": {"wg": [{"ip": "192.0.2.2", "cn": "w"}]}}
    region = serverlist.parse(_body({"groups": GROUPS, "regions": [minimal]})).region("x")
    assert (region.port_forward, region.geo, region.offline, region.meta) == (False, False, False, ())
