"""Core runs a network's agent around its owner's hooks: started after ``ws_network_up``, stopped before
``ws_network_down`` (the agent uses what the owner creates). The supervisor itself is tested for real in
core/tests/root/test_agents.py; here ws.agents is replaced by a recorder to see the order."""

from __future__ import annotations

import pytest
import ws
from ws.types import Network, NetworkAgent

TOML = """
[user]
authorized_keys = []
"""


class Tunnel:
    """A network with an agent; its hooks write to the shared journal."""

    def __init__(self, journal: list[str]):
        self.journal = journal

    @ws.hookimpl
    def ws_networks(self) -> list[str]:
        return ["tunnel"]

    @ws.hookimpl
    def ws_network_define(self, name: str, core, sections) -> Network:
        agent = NetworkAgent(("tunnel", "run", name))
        return Network(name, "tunnel-br", "10.99.0.0/24", "10.99.0.1", "10.99.0.1", (), agent=agent)

    @ws.hookimpl
    def ws_network_up(self, network: Network, ctx) -> list[str]:
        self.journal.append("owner up")
        return ["bridge created"]

    @ws.hookimpl
    def ws_network_down(self, network: Network, ctx) -> list[str]:
        self.journal.append("owner down")
        return ["bridge removed"]


@pytest.fixture
def journal(monkeypatch) -> list[str]:
    from ws import agents

    journal: list[str] = []

    def ensure_running(network, state_dir, config):
        journal.append(f"agent start {' '.join(network.agent.command)} --config {config.name}")
        return ["agent started"]

    def stop(network, state_dir):
        journal.append("agent stop")
        return ["agent stopped"]

    monkeypatch.setattr(agents, "ensure_running", ensure_running)
    monkeypatch.setattr(agents, "stop", stop)
    return journal


@pytest.fixture
def ctx(write_config, journal):
    from ws.context import load_context
    from ws.plugins import PluginManager

    plugins = PluginManager(environ={"WS_PLUGINS": ""}).load([("tunnel", Tunnel(journal))])
    return load_context(write_config(TOML), plugins, environ={})


def test_agent_starts_after_the_owner_brought_the_network_up(ctx, journal) -> None:
    assert ctx.network("tunnel").up() == ["bridge created", "agent started"]
    assert journal == ["owner up", "agent start tunnel run tunnel --config ws.toml"]


def test_agent_stops_before_the_owner_takes_the_network_down(ctx, journal) -> None:
    assert ctx.network("tunnel").down() == ["agent stopped", "bridge removed"]
    assert journal == ["agent stop", "owner down"]
