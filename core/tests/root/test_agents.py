"""Network agents under core's real supervisor (detached here: this host has no systemd as PID 1).

The agent is a real ``ws`` subcommand that stays in the foreground (``ws network guard`` of a bridge that
does not exist, so it never changes anything): the test proves core runs ``python -m ws`` with the
network's command, starts it once, reports it and stops it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from ws import agents
from ws.supervise import supervisor_for
from ws.types import Network, NetworkAgent

pytestmark = pytest.mark.root


@pytest.fixture
def network(tmp_path):
    name = f"agt{uuid.uuid4().hex[:6]}"
    command = ("network", "guard", "--state-dir", str(tmp_path), "--bridge", f"wsagent-{name[-6:]}")
    record = Network(
        name=name,
        bridge="",
        subnet="10.99.0.0/24",
        host_address="10.99.0.1",
        gateway="10.99.0.1",
        dns=("10.99.0.1",),
        ranges={},
        agent=NetworkAgent(command=command, stop_timeout=5),
    )
    yield record
    supervisor_for(tmp_path).stop(agents.service_name(name), timeout=1)


def test_agent_starts_once_runs_ws_and_stops(network, tmp_path) -> None:
    assert not agents.running(network, tmp_path)
    changes = agents.ensure_running(network, tmp_path, config=None)
    assert len(changes) == 1 and "started" in changes[0]
    assert agents.running(network, tmp_path)
    status = supervisor_for(tmp_path).status(agents.service_name(network.name))
    argv = Path(f"/proc/{status.pid}/cmdline").read_bytes().split(b"\0")
    assert [part.decode() for part in argv[1:5]] == ["-m", "ws", "network", "guard"]

    assert agents.ensure_running(network, tmp_path, config=None) == []  # idempotent: still the same process
    assert supervisor_for(tmp_path).status(agents.service_name(network.name)).pid == status.pid

    assert agents.stop(network, tmp_path) == [f"stopped the {network.name} agent"]
    assert not agents.running(network, tmp_path)
    assert agents.stop(network, tmp_path) == []


def test_network_without_agent_needs_nothing(tmp_path) -> None:
    plain = Network("plain", bridge="", subnet="10.98.0.0/24", host_address="10.98.0.1", gateway="10.98.0.1", dns=())
    assert agents.ensure_running(plain, tmp_path, None) == [] and agents.stop(plain, tmp_path) == []
    assert not agents.running(plain, tmp_path)
