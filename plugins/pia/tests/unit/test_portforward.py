"""Port forwarding and renewal against the fake: signature reuse across restarts, refresh at < 7 days,
on a refused signature and on HTTP 409, bindPort back-off."""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime, timedelta

import pytest
from ws_plugin_pia import portforward, renewal, session
from ws_plugin_pia.auth import Tokens
from ws_plugin_pia.transport import PiaError, PiaHttp, PiaTimeout, Target
from ws_testing.fake_pia import PASSWORD


@pytest.fixture
def connected(fake, settings, paths):
    with PiaHttp.from_settings(settings) as http:
        return session.connect(settings, paths, http)[0]


def _maintain(settings, paths, connected, sleeps=None, retries=3):
    """One run of the maintenance as a new process would do it: fresh client, state from disk."""
    with PiaHttp.from_settings(settings) as http:
        return portforward.maintain(
            http,
            connected,
            Tokens(http, settings, paths),
            paths,
            retries,
            0.25,
            sleep=(sleeps if sleeps is not None else []).append,
        )


def test_signature_fetched_bound_and_persisted(fake, settings, paths, connected) -> None:
    state = _maintain(settings, paths, connected)
    assert (fake.count("getSignature"), fake.count("bindPort")) == (1, 1)
    assert fake.bound_ports == [state.port] and portforward.current_port(paths) == state.port
    assert state.expires_at - datetime.now(UTC) > timedelta(days=59)
    assert state.bound_at is not None and state.server_cn == connected.server_cn
    assert stat.S_IMODE(paths.port_forward.stat().st_mode) == 0o600
    for call in fake.calls[-2:]:  # through the VIP, verified against the wg server's cn
        assert call.local == f"{connected.server_vip}:{fake.spec.pf_port}" and call.sni == connected.server_cn


def test_signature_survives_a_restart(fake, settings, paths, connected) -> None:
    first = _maintain(settings, paths, connected)
    second = _maintain(settings, paths, session.load(paths))
    assert (fake.count("getSignature"), fake.count("bindPort")) == (1, 2)
    assert (second.port, second.payload, second.signature) == (first.port, first.payload, first.signature)


def test_new_signature_when_fewer_than_seven_days_remain(fake, settings, paths, connected) -> None:
    fake.add_fault("getSignature", "expires_in", seconds=timedelta(days=6, hours=23).total_seconds())
    short = _maintain(settings, paths, connected)
    assert short.expires_at - datetime.now(UTC) < timedelta(days=7)
    renewed = _maintain(settings, paths, connected)
    assert fake.count("getSignature") == 2 and renewed.port != short.port or renewed.payload != short.payload
    assert renewed.expires_at - datetime.now(UTC) > timedelta(days=59)
    _maintain(settings, paths, connected)
    assert fake.count("getSignature") == 2  # eight days or more left: reused


def test_new_signature_when_bindport_refuses_it(fake, settings, paths, connected) -> None:
    first = _maintain(settings, paths, connected)
    fake.add_fault("bindPort", "bad_signature")
    second = _maintain(settings, paths, connected)
    assert (fake.count("getSignature"), fake.count("bindPort")) == (2, 3)
    assert second.payload != first.payload and portforward.current_port(paths) == second.port


def test_new_signature_on_http_409(fake, settings, paths, connected) -> None:
    _maintain(settings, paths, connected)
    fake.add_fault("bindPort", "409")
    _maintain(settings, paths, connected)
    assert (fake.count("getSignature"), fake.count("bindPort")) == (2, 3)


def test_new_signature_after_a_server_change(fake, settings, paths, connected) -> None:
    _maintain(settings, paths, connected)
    moved = session.Session(
        **{**connected.__dict__, "server_cn": "berlin402", "server_vip": f"{fake.spec.regions[1].wg[0].vip}"}
    )
    _maintain(settings, paths, moved)
    assert fake.count("getSignature") == 2 and portforward.load(paths).server_cn == "berlin402"


def test_bindport_timeouts_back_off_then_succeed(fake, make_settings, paths, connected) -> None:
    settings = make_settings(request_timeout=0.3)
    _maintain(settings, paths, connected)
    fake.add_fault("bindPort", "slow", seconds=0.6, times=2)
    sleeps: list[float] = []
    _maintain(settings, paths, connected, sleeps)
    assert sleeps == [0.25, 0.5] and fake.count("bindPort") == 4


def test_bindport_gives_up_after_its_retries(fake, make_settings, paths, connected) -> None:
    _maintain(make_settings(), paths, connected)  # signature and token cached, at the default timeout
    fake.add_fault("bindPort", "slow", seconds=2.0, times=2)  # twice the timeout: a loaded host stays clear
    sleeps: list[float] = []
    with pytest.raises(PiaTimeout, match="binding the forwarded port"):
        _maintain(make_settings(request_timeout=1.0), paths, connected, sleeps, retries=1)
    assert sleeps == [0.25]


def test_expired_token_for_signature_is_renewed_on_401(fake, settings, paths, connected) -> None:
    fake.add_fault("getSignature", "401")
    _maintain(settings, paths, connected)
    assert fake.count("token") == 2 and fake.count("getSignature") == 2


def _payload(data: object) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("%%%", "does not decode"),
        (_payload({"port": 1234}), "does not decode"),
        (_payload({"port": 0, "expires_at": "2030-01-01T00:00:00Z"}), "invalid port 0"),
        (_payload({"port": "80", "expires_at": "2030-01-01T00:00:00Z"}), "invalid port '80'"),
        (_payload({"port": 80, "expires_at": "tomorrow"}), "does not decode"),
    ],
)
def test_payload_shapes_refused(payload: str, message: str) -> None:
    with pytest.raises(PiaError, match=message):
        portforward.decode_payload(payload)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({"status": "ERROR", "message": "no port available"}, "refused: no port available"),
        ({}, "refused: no message"),
        ({"status": "OK", "signature": "s"}, "lacks the payload or the signature"),
        ({"status": "OK", "payload": _payload({"port": 1, "expires_at": "2030-01-01"}), "signature": ""}, "lacks"),
        ({"status": "OK", "payload": "%%", "signature": "s"}, "does not decode"),
    ],
)
def test_get_signature_reply_shapes(reply, message) -> None:
    with pytest.raises(PiaError, match=message):
        portforward.signature_from(reply, Target("10.0.0.1", 19999, "zurich401"))


def test_get_signature_reply_parses() -> None:
    payload = _payload({"token": "t", "port": 47047, "expires_at": "2030-01-02T03:04:05Z"})
    state = portforward.signature_from(
        {"status": "OK", "payload": payload, "signature": "sig"}, Target("10.0.0.1", 19999, "zurich401")
    )
    assert (state.port, state.server_cn, state.signature, state.bound_at) == (47047, "zurich401", "sig", None)


def test_payload_decodes_port_and_expiry() -> None:
    port, expires = portforward.decode_payload(
        _payload({"token": "t", "port": 47047, "expires_at": "2030-01-02T03:04:05Z"})
    )
    assert (port, expires) == (47047, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    naive = portforward.decode_payload(_payload({"port": 1, "expires_at": "2030-01-02T03:04:05"}))[1]
    assert naive.tzinfo is UTC


def test_renew_keeps_a_fresh_session_and_forces_a_new_one(fake, make_settings, paths) -> None:
    settings = make_settings(port_forward=True)
    kwargs = {"port_forward_port": fake.spec.pf_port, "backoff": 0.01}
    first = renewal.renew(settings, paths, **kwargs)
    assert first.action == "renewed" and "region swiss" in first.detail and "forwarded" in first.detail
    assert first.next_due - datetime.now(UTC) <= portforward.BIND_INTERVAL
    again = renewal.renew(settings, paths, **kwargs)
    assert again.action == "unchanged"
    assert [fake.count(e) for e in ("serverlist", "token", "addKey", "getSignature", "bindPort")] == [1, 1, 1, 1, 2]
    forced = renewal.renew(settings, paths, force=True, **kwargs)
    assert forced.action == "renewed"
    assert [fake.count(e) for e in ("serverlist", "token", "addKey", "getSignature", "bindPort")] == [2, 1, 2, 1, 3]
    assert PASSWORD not in json.dumps([first.detail, again.detail, forced.detail])


def test_renew_follows_a_changed_region(fake, make_settings, paths) -> None:
    renewal.renew(make_settings(region="swiss"), paths)
    moved = renewal.renew(make_settings(region="de_berlin"), paths)
    assert moved.action == "renewed" and moved.detail.startswith("region de_berlin,")
    assert renewal.renew(make_settings(region="de_berlin"), paths).action == "unchanged"


def test_renew_replaces_a_month_old_session(fake, settings, paths) -> None:
    renewal.renew(settings, paths)
    data = json.loads(paths.session.read_text())
    data["created_at"] = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    paths.session.write_text(json.dumps(data))
    assert renewal.renew(settings, paths).action == "renewed"
    assert fake.count("addKey") == 2 and fake.count("getSignature") == 0


def test_concurrent_renewals_register_one_key(fake, settings, paths) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=3) as pool:
        actions = sorted(pool.map(lambda _n: renewal.renew(settings, paths).action, range(3)))
    assert actions == ["renewed", "unchanged", "unchanged"] and fake.count("addKey") == 1
