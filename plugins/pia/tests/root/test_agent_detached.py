"""Root tier: the vpn network's agent under core's detached supervisor (this host has no systemd as PID 1).

``ws network up vpn`` (the real command) makes the topology and core starts ``ws-agent-vpn`` = ``python -m ws
--config F vpn run vpn`` as a detached process; with no ``NOTIFY_SOCKET`` its sd_notify calls are no-ops. This
kernel has no WireGuard, so the agent's first round fails at the tunnel after a real connect to the fake PIA:
the agent must keep running, back off, and report the error where ``ws vpn status`` and ``ws network status``
show it. ``ws network down vpn`` stops it before removing the topology. (The VM tier runs the same agent as a
``Type=notify`` unit with a watchdog, and with a tunnel.)
"""

from __future__ import annotations

import json
import random
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.root


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    return str(value) if isinstance(value, (int, float)) else json.dumps(str(value))


@pytest.fixture
def config(fake, tmp_path: Path, password_file: Path) -> Path:
    suffix, third = secrets.token_hex(3), random.randint(100, 250)
    (tmp_path / "ca.crt").write_bytes(fake.ca.pem)
    pia = {
        "username": "p1234567",
        "password_file": password_file,
        "ca_file": tmp_path / "ca.crt",
        "serverlist_url": fake.serverlist_url(),
        "token_url": fake.token_url(),
        "hosts": {fake.spec.serverlist_host: fake.spec.serverlist_address,
                  fake.spec.token_host: fake.spec.token_address},
        "region": "swiss",
        "bridge": f"brv{suffix}",
        "subnet": f"10.{third}.78.0/24",
        "host_address": f"10.{third}.78.1",
        "endpoint_address": f"10.{third}.78.2",
        "namespace": f"wsv{suffix}",
        "interface": f"pw{suffix}",
        "health_interval": 2.0,
    }  # fmt: skip
    lines = [f'state_dir = "{tmp_path / "state"}"', "[pia]", *(f"{k} = {_toml(v)}" for k, v in pia.items())]
    path = tmp_path / "ws.toml"
    path.write_text("\n".join(lines) + "\n")
    yield path
    ws(path, "network", "down", "vpn")


def ws(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ws", "--config", str(config), *args], capture_output=True, text=True, timeout=120
    )


def test_network_up_starts_the_agent_detached_and_down_stops_it(config: Path, tmp_path: Path) -> None:
    up = ws(config, "network", "up", "vpn", "--json")
    assert up.returncode == 0, up.stderr
    changes = json.loads(up.stdout)[0]["changes"]
    assert any("started the vpn agent (detached, pid" in change for change in changes), changes
    record = json.loads((tmp_path / "state" / "run" / "ws-agent-vpn.json").read_text())
    argv = Path(f"/proc/{record['pid']}/cmdline").read_bytes().decode().split("\0")[:-1]
    assert argv[1:] == ["-m", "ws", "--config", str(config), "vpn", "run", "vpn"]
    environment = Path(f"/proc/{record['pid']}/environ").read_bytes().split(b"\0")
    assert not any(item.startswith((b"NOTIFY_SOCKET=", b"WATCHDOG_")) for item in environment)

    # the first round connects to the fake PIA, then fails at the tunnel (no WireGuard in this kernel)
    deadline = time.monotonic() + 90
    while True:
        status = json.loads(ws(config, "vpn", "status", "--json").stdout)
        if (status["tunnel"] or {}).get("state") == "failing" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status["agent_running"] is True and status["network"] == "vpn"
    assert status["tunnel"]["state"] == "failing" and status["tunnel"]["last_error"], status["tunnel"]
    assert status["region"] == "swiss", "the session was made from the host namespace before the tunnel failed"
    network = json.loads(ws(config, "network", "status", "vpn", "--json").stdout)[0]
    assert network["up"] is False and "agent running" in network["detail"] and "last error" in network["detail"]
    assert ws(config, "network", "up", "vpn").returncode == 0
    assert json.loads((tmp_path / "state" / "run" / "ws-agent-vpn.json").read_text())["pid"] == record["pid"]
    assert "vpn agent round failed" in (tmp_path / "state" / "agents" / "vpn.log").read_text()

    down = ws(config, "network", "down", "vpn", "--json")
    assert down.returncode == 0, down.stderr
    assert "stopped the vpn agent" in json.loads(down.stdout)[0]["changes"][0]
    assert json.loads(ws(config, "vpn", "status", "--json").stdout)["agent_running"] is False
