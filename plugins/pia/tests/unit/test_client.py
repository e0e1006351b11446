"""The client against the fake PIA service on loopback: TLS trust, the call sequence, token handling,
addKey retries, the password's whereabouts, faults."""

from __future__ import annotations

import io
import json
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
from ws import log
from ws_plugin_pia import auth, session, wgkey
from ws_plugin_pia.transport import PiaError, PiaHttp, PiaTimeout
from ws_testing.fake_pia import PASSWORD, example_spec


@pytest.fixture
def http(settings):
    with PiaHttp.from_settings(settings) as client:
        yield client


def _connect(settings, paths, http=None):
    if http is not None:
        return session.connect(settings, paths, http)[0]
    with PiaHttp.from_settings(settings) as client:
        return session.connect(settings, paths, client)[0]


def test_fresh_connect_makes_one_list_one_token_one_addkey(fake, settings, paths) -> None:
    result = _connect(settings, paths)
    assert [fake.count(e) for e in ("serverlist", "token", "addKey")] == [1, 1, 1]
    assert len(fake.calls) == 3
    server = fake.spec.regions[0].wg[0]
    assert (result.region, result.server_cn, result.server_ip, result.server_vip) == (
        "swiss", server.cn, server.ip, server.vip
    )  # fmt: skip
    assert result.server_port == 1337 and result.dns_servers == ("10.0.0.243", "10.0.0.242")
    assert result.public_key == wgkey.public_key(paths.private_key) == result.peer_pubkey
    add_key = next(call for call in fake.calls if call.endpoint == "addKey")
    assert add_key.sni == server.cn and add_key.host == f"{server.cn}:1337"
    assert add_key.local == f"{server.ip}:1337"
    assert session.load(paths) == result


def test_state_files_are_private(fake, settings, paths) -> None:
    _connect(settings, paths)
    assert stat.S_IMODE(paths.root.stat().st_mode) == 0o700
    for path in (paths.private_key, paths.token, paths.session):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    stored = b"".join(path.read_bytes() for path in paths.root.iterdir())
    assert PASSWORD.encode() not in stored


def test_password_only_in_the_token_post_body(fake, settings, paths) -> None:
    _connect(settings, paths)
    token_call = next(call for call in fake.calls if call.endpoint == "token")
    assert token_call.method == "POST" and token_call.target == "/api/client/v2/token"
    assert f"password={PASSWORD}" in token_call.body and "username=p1234567" in token_call.body
    for call in fake.calls:
        assert PASSWORD not in call.target and PASSWORD not in call.host


def test_password_and_token_never_in_log_lines(fake, settings, paths) -> None:
    stream = io.StringIO()
    log.configure(verbosity=1, fmt="json", stream=stream)
    try:
        _connect(settings, paths)
        fake.add_fault("addKey", "drop")  # a logged retry
        fake.add_fault("token", "401")
        with pytest.raises(PiaError), PiaHttp.from_settings(settings) as http:
            auth.Tokens(http, settings, paths).renew()
    finally:
        import structlog

        structlog.reset_defaults()
    lines = stream.getvalue().splitlines()
    assert any('"pia request"' in line for line in lines)  # the client does log, at debug level
    token = json.loads(paths.token.read_text())["token"]
    for line in lines:
        assert PASSWORD not in line and token not in line


def test_ip_literal_urls_verify_against_the_ip(fake, make_settings, paths) -> None:
    settings = make_settings(
        serverlist_url=fake.serverlist_url(by_address=True), token_url=fake.token_url(True), hosts={}
    )
    _connect(settings, paths)
    assert {call.sni for call in fake.calls if call.endpoint in ("serverlist", "token")} == {None}


def test_untrusted_ca_is_refused(fake, make_settings, paths, other_ca) -> None:
    with pytest.raises(
        PiaError, match="certificate is not valid for 'serverlist.pia.test' under the configured ca_file"
    ):
        _connect(make_settings(ca_file=str(other_ca)), paths)
    assert fake.count("serverlist") == 0


@pytest.fixture
def impostor(loopback_prefix):
    """The swiss wg server presents a valid certificate of the same CA, but for another name."""
    regions = example_spec(loopback_prefix).regions
    regions[0].wg[0].presented_cn = "impostor"
    return {"regions": regions}


@pytest.mark.parametrize("fake_overrides", ["impostor"], indirect=True)
def test_wrong_cn_is_refused(fake, settings, paths) -> None:
    with pytest.raises(PiaError, match=r"registering the key: cannot connect to zurich401 .*not valid for 'zurich401'"):
        _connect(settings, paths)
    assert fake.count("addKey") == 0


def test_tampered_list_is_refused_when_key_configured(fake, make_settings, paths) -> None:
    fake.add_fault("serverlist", "tamper")
    with pytest.raises(PiaError, match="signature does not verify"):
        _connect(make_settings(), paths)
    assert fake.count("token") == 0


def test_tampered_list_is_believed_without_key(fake, make_settings, paths) -> None:
    """Why the key matters: the tampering (swiss marked offline) goes unnoticed without it."""
    fake.add_fault("serverlist", "tamper")
    with pytest.raises(PiaError, match="'swiss' is offline"):
        _connect(make_settings(serverlist_pubkey_file=None), paths)


def test_short_list_is_an_error(fake, settings, paths) -> None:
    fake.add_fault("serverlist", "short")
    with pytest.raises(PiaError, match="only 2 bytes"):
        _connect(settings, paths)


def test_cached_token_is_reused_until_it_expires(fake, settings, paths) -> None:
    _connect(settings, paths)
    _connect(settings, paths)
    assert fake.count("token") == 1 and fake.count("addKey") == 2
    data = json.loads(paths.token.read_text())
    data["obtained_at"] = (datetime.now(UTC) - timedelta(hours=23, minutes=30)).isoformat()
    paths.token.write_text(json.dumps(data))
    _connect(settings, paths)
    assert fake.count("token") == 2


def test_login_failed_gets_a_new_token_and_retries_once(fake, settings, paths) -> None:
    fake.add_fault("addKey", "login_failed")
    _connect(settings, paths)
    assert fake.count("token") == 2 and fake.count("addKey") == 2


def test_login_failed_twice_is_an_error(fake, settings, paths) -> None:
    fake.add_fault("addKey", "login_failed", times=2)
    with pytest.raises(PiaError, match="Login failed!"):
        _connect(settings, paths)
    assert fake.count("addKey") == 2


def test_stale_cached_token_is_replaced_after_login_failed(fake, settings, paths) -> None:
    """A cached token PIA no longer knows: addKey says Login failed!, a new token is fetched."""
    auth.write_json(paths.token, {"token": "forgotten", "obtained_at": datetime.now(UTC).isoformat()})
    _connect(settings, paths)
    assert fake.count("token") == 1 and fake.count("addKey") == 2


def test_http_401_renews_the_token(fake, settings, paths) -> None:
    fake.add_fault("addKey", "401")
    _connect(settings, paths)
    assert fake.count("token") == 2 and fake.count("addKey") == 2


def test_wrong_password_names_the_keys(fake, settings, paths, password_file) -> None:
    password_file.write_text("wrong\n")
    with pytest.raises(PiaError, match=r"refused the credentials \(HTTP 401\).*pia.username and pia.password_file"):
        _connect(settings, paths)


def test_dropped_connection_is_retried_once(fake, settings, paths) -> None:
    fake.add_fault("serverlist", "drop")
    _connect(settings, paths)
    assert fake.count("serverlist") == 2


def test_dropped_twice_is_an_error(fake, settings, paths) -> None:
    fake.add_fault("token", "drop", times=2)
    with pytest.raises(PiaError, match=r"requesting a PIA token: www.pia.test \(.*\) closed the connection"):
        _connect(settings, paths)


def test_slow_answer_times_out_with_a_sentence(fake, make_settings, paths) -> None:
    fake.add_fault("addKey", "slow", seconds=1.5)
    with pytest.raises(PiaTimeout, match=r"registering the key: zurich401 \(.*:1337\) did not answer in time"):
        _connect(make_settings(request_timeout=0.5), paths)


def test_unreachable_server_is_an_error(fake, make_settings, paths) -> None:
    settings = make_settings(serverlist_url="https://serverlist.pia.test:1/vpninfo/servers/v6")
    with pytest.raises(PiaError, match=r"fetching the server list: cannot connect to serverlist.pia.test"):
        _connect(settings, paths)


def test_failed_add_key_keeps_the_stored_key_matching_the_session(fake, settings, paths) -> None:
    first = _connect(settings, paths)
    fake.add_fault("addKey", "500")
    with pytest.raises(PiaError, match="HTTP 500"):
        _connect(settings, paths)
    assert wgkey.public_key(paths.private_key) == first.public_key == session.load(paths).public_key


def test_each_connect_uses_a_new_key(fake, settings, paths) -> None:
    first = _connect(settings, paths).public_key
    assert _connect(settings, paths).public_key != first
    assert os.path.getsize(paths.private_key) == 45  # base64 of 32 bytes and a newline


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({"status": "OK"}, "no valid 'server_ip'"),
        ({"status": "OK", "server_ip": "x", "server_port": "1337"}, "no valid 'server_port'"),
        ({"status": "OK", "server_ip": "x", "server_port": True}, "no valid 'server_port'"),
    ],
)
def test_add_key_reply_missing_fields(reply, message) -> None:
    with pytest.raises(PiaError, match=message):
        session.session_from(session.accepted(reply, "addKey"), "swiss", "cn", "pub")


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        ({"status": "ERROR", "message": "Login failed!"}, session.LoginFailed, "addKey: Login failed!"),
        ({"status": "ERROR", "message": "server full"}, PiaError, "refused the key: server full"),
        ({"status": "ERROR"}, PiaError, "refused the key: no message"),
        ({}, PiaError, "refused the key: no message"),
    ],
)
def test_add_key_refusals(reply, error, message) -> None:
    with pytest.raises(error, match=message):
        session.accepted(reply, "addKey")


def test_add_key_reply_missing_dns_is_an_error() -> None:
    reply = {"server_ip": "1", "server_port": 1, "server_key": "k", "server_vip": "v", "peer_ip": "p",
             "peer_pubkey": "q", "dns_servers": []}  # fmt: skip
    with pytest.raises(PiaError, match="dns_servers"):
        session.session_from(reply, "swiss", "cn", "pub")


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (200, b"<html>maintenance</html>", "PIA's token service did not answer JSON"),
        (200, b"[]", "did not answer a JSON object"),
        (200, b"{}", "carries no token"),
        (200, b'{"token": ""}', "carries no token"),
        (200, b'{"token": 5}', "carries no token"),
    ],
)
def test_token_reply_shapes(status, body, message) -> None:
    import httpx

    with pytest.raises(PiaError, match=message):
        auth.token_from(httpx.Response(status, content=body))


def test_token_reply_parses() -> None:
    import httpx

    assert auth.token_from(httpx.Response(200, content=b'{"token": "abc"}')) == "abc"
