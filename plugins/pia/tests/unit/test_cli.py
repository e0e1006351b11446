"""``[pia]`` through ws's real configuration loader and ``ws vpn ...`` in-process (entry point ``pia`` only):
errors name the key and exit 2, secrets are masked in every output."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from ws_testing.fake_pia import PASSWORD


@pytest.fixture
def ws(monkeypatch: pytest.MonkeyPatch, write_config):
    """``ws(pia_table, *args)``: write ws.toml with that [pia] table and run ws in-process."""
    from click.testing import CliRunner
    from ws.cli.common import CliState
    from ws.cli.main import cli

    monkeypatch.setenv("WS_PLUGINS", "pia")
    monkeypatch.delenv("WS_CONFIG", raising=False)

    def run(pia: dict[str, Any] | None, *args: str):
        config = write_config(pia)
        return CliRunner().invoke(cli, ["--config", str(config), *args], obj=CliState(), catch_exceptions=False)

    return run


@pytest.fixture
def table(fake, tmp_path: Path, password_file: Path) -> dict[str, Any]:
    (tmp_path / "ca.crt").write_bytes(fake.ca.pem)
    (tmp_path / "serverlist.pub").write_bytes(fake.list_public_key_pem)
    return {
        "username": "p1234567",
        "password_file": password_file,
        "ca_file": tmp_path / "ca.crt",
        "serverlist_pubkey_file": tmp_path / "serverlist.pub",
        "serverlist_url": fake.serverlist_url(),
        "token_url": fake.token_url(),
        "hosts": {
            fake.spec.serverlist_host: fake.spec.serverlist_address,
            fake.spec.token_host: fake.spec.token_address,
        },
        "region": "swiss",
        "latency_timeout": 0.2,
    }


def _problem(result, text: str) -> None:
    assert result.exit_code == 2, result.output
    assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: os.chmod(p, 0o644), "pia.password_file: {p} has mode 0644; it must be 0600"),
        (lambda p: os.chown(p, 65534, 0), "pia.password_file: {p} is owned by uid 65534; it must be owned by root"),
        (lambda p: p.unlink(), "pia.password_file: {p} does not exist"),
        (lambda p: (p.unlink(), p.mkdir(mode=0o600)), "pia.password_file: {p} is not a regular file"),
        (lambda p: (p.rename(p.with_suffix(".real")), p.symlink_to(p.with_suffix(".real"))), "is not a regular file"),
    ],
)
def test_password_file_checks_name_the_key(ws, table, password_file, change, message) -> None:
    change(password_file)
    _problem(ws(table, "vpn", "status"), message.format(p=password_file))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"password_file": None, "ca_file": None}, "pia: a configured [pia] also needs password_file, ca_file"),
        ({"ca_file": "/nonexistent/ca.crt"}, "pia.ca_file: /nonexistent/ca.crt is not a regular file"),
        ({"ca_file": "relative.crt"}, "pia.ca_file: must be an absolute path"),
        ({"serverlist_url": "http://x/v6"}, "pia.serverlist_url: 'http://x/v6' must start with https://"),
        ({"hosts": {"a": "not-an-ip"}}, "pia.hosts.a"),
        ({"latency_timeout": 0}, "pia.latency_timeout"),
        ({"port_forward": "yes"}, "pia.port_forward: wrong type: expected boolean"),
        ({"bogus": 1}, "pia.bogus: unknown key"),
    ],
)
def test_bad_values_name_the_key(ws, table, changes, message) -> None:
    pia = {key: value for key, value in {**table, **changes}.items() if value is not None}
    _problem(ws(pia, "vpn", "status"), message)


def test_password_never_in_config_errors(ws, table, password_file) -> None:
    os.chmod(password_file, 0o640)
    result = ws(table, "vpn", "status")
    assert result.exit_code == 2 and PASSWORD not in result.output + result.stderr


def test_unconfigured_section_says_so(ws) -> None:
    result = ws(None, "vpn", "status")
    assert result.exit_code == 1 and "[pia] is not configured" in result.stderr


def test_unconfigured_doctor_is_quiet(ws) -> None:
    result = ws(None, "doctor", "--json")
    checks = {check["name"]: check for check in json.loads(result.stdout)}
    assert checks["pia: configuration"]["status"] == "ok"


def test_status_before_any_session(ws, table) -> None:
    result = ws(table, "vpn", "status")
    assert result.exit_code == 0 and "no PIA session yet (ws vpn renew makes one)" in result.stdout
    assert "token:       - (age -)" in result.stdout
    assert "tunnel:      ws-agent-vpn not running; it never reported (ws network up vpn starts it)" in result.stdout
    assert json.loads(ws(table, "vpn", "status", "vpn", "--json").stdout)["agent_running"] is False


@pytest.mark.parametrize("command", ["status", "run", "renew", "verify"])
def test_a_network_the_plugin_does_not_own_is_a_usage_error(ws, table, command) -> None:
    result = ws(table, "vpn", command, "sandbox")
    assert result.exit_code == 2 and "ws-plugin-pia owns the network vpn, not 'sandbox'" in result.stderr


def test_renew_then_status_masks_secrets(ws, fake, table, tmp_path) -> None:
    renewed = ws(table, "vpn", "renew", "--no-tunnel")
    assert renewed.exit_code == 0, renewed.stderr
    assert renewed.stdout.startswith("renewed: region swiss, server zurich401")
    assert ws(table, "vpn", "renew", "--no-tunnel").stdout.startswith("unchanged: ")
    forced = ws(table, "vpn", "renew", "--no-tunnel", "--force", "--json")
    assert json.loads(forced.stdout)["action"] == "renewed"
    status = ws(table, "vpn", "status")
    as_json = ws(table, "vpn", "status", "--json")
    data = json.loads(as_json.stdout)
    assert data["region"] == "swiss" and data["server"] == "zurich401" and data["token"] == "***"
    assert data["token_age_seconds"] < 60 and data["peer_ip"].startswith("10.")
    assert f"public key:  {data['public_key']}" in status.stdout and "token:       ***" in status.stdout
    token = json.loads((tmp_path / "state" / "pia" / "token.json").read_text())["token"]
    private = (tmp_path / "state" / "pia" / "wg.key").read_text().strip()
    for result in (renewed, forced, status, as_json):
        for secret in (PASSWORD, token, private):
            assert secret not in result.stdout + result.stderr


def test_regions_lists_every_region(ws, fake, table) -> None:
    """Nothing listens on 443 here (the root tier measures real latency), so no region has one."""
    result = ws(table, "vpn", "regions", "--json")
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"swiss", "de_berlin", "us_east", "geo_land", "gone"}
    assert rows["us_east"]["port_forward"] is False and rows["geo_land"]["geo"] is True
    assert rows["gone"]["offline"] is True and rows["gone"]["latency_ms"] is None
    text = ws(table, "vpn", "regions").stdout
    assert "gone" in text and "offline" in text


def test_doctor_checks_pass_against_the_fake(ws, fake, table) -> None:
    result = ws(table, "doctor", "--json")
    checks = {check["name"]: check for check in json.loads(result.stdout) if check["name"].startswith("pia")}
    assert {name: check["status"] for name, check in checks.items()} == {
        "pia: CA": "ok", "pia: password file": "ok", "pia: server list": "ok", "pia: credentials": "ok"
    }  # fmt: skip
    assert "signature verified" in checks["pia: server list"]["detail"]
    assert PASSWORD not in result.stdout


def test_doctor_reports_refused_credentials(ws, fake, table, password_file) -> None:
    password_file.write_text("wrong")
    result = ws(table, "doctor", "--json")
    checks = {check["name"]: check for check in json.loads(result.stdout)}
    assert (
        checks["pia: credentials"]["status"] == "fail"
        and "refused the credentials" in checks["pia: credentials"]["detail"]
    )
    assert result.exit_code == 1


def test_doctor_reports_untrusted_ca(ws, fake, table, other_ca) -> None:
    result = ws({**table, "ca_file": other_ca}, "doctor", "--json")
    checks = {check["name"]: check for check in json.loads(result.stdout)}
    assert checks["pia: server list"]["status"] == "fail" and "not valid for" in checks["pia: server list"]["detail"]


def test_installed_units_run_the_vpn_agent_and_bind_its_service_workspaces(table, write_config, tmp_path) -> None:
    """What ``ws systemd install`` writes for a vpn service workspace (rendered; the VM tier installs them)."""
    from ws.context import load_context
    from ws.plugins import PluginManager
    from ws.units.render import Invocation, render

    config = write_config(table)
    config.write_text(
        config.read_text()
        + '[user]\nname = "alice"\nuid = 1500\ngid = 1500\nauthorized_keys = []\n'
        + '[workspaces.torrent]\ntype = "nspawn"\nnetwork = "vpn"\nautostart = true\n'
    )
    plugins = PluginManager(environ={"WS_PLUGINS": "pia,nspawn"}).load()
    ctx = load_context(config, plugins, environ={})
    units = render(ctx, Invocation("/usr/bin/ws", str(config), (), 257))
    assert sorted(units) == ["ws-agent-vpn.service", "ws-networks.service", "ws-workspace-torrent.service"]
    agent = units["ws-agent-vpn.service"]
    assert f"ExecStart=/usr/bin/ws --config {config} vpn run vpn\n" in agent
    assert "Type=notify\n" in agent and "WatchdogSec=300s\n" in agent and "TimeoutStartSec=600s\n" in agent
    workspace = units["ws-workspace-torrent.service"]
    assert "BindsTo=ws-agent-vpn.service\n" in workspace
    assert "After=network-online.target ws-networks.service ws-agent-vpn.service\n" in workspace
    assert f"ExecStart=/usr/bin/ws --config {config} network up vpn\n" in units["ws-networks.service"]
