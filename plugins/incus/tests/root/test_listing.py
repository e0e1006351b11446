"""``ws_status_many`` (one stdlib request for every workspace, for ws list and ws status) reports what
``ws_status`` (pylxd, validated options) reports, against the real daemon: for an absent, a running, a
stopped and a foreign instance (``wsenv.both_statuses`` compares them); and the CLI prints that state
with and without the configuration snapshot."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.root


def listed(wsenv, name: str) -> str:
    """The state ``ws list`` and ``ws status`` print (both twice: a full load, then from the snapshot)."""
    states = set()
    for _ in range(2):
        rows = json.loads(wsenv.ws("list", "--json").stdout)
        states.add(next(row["state"] for row in rows if row["name"] == name))
        states.add(wsenv.status(name)["state"])
    assert len(states) == 1, states
    return states.pop()


def test_the_batch_status_matches_ws_status(wsenv):
    name = wsenv.name("quick")
    instance = f"workspace-{name}"
    absent = wsenv.both_statuses(name)
    assert absent.state == "absent" and absent.detail.startswith(f"no instance {instance} on ")
    assert listed(wsenv, name) == "absent"

    wsenv.ws("up", name)
    running = wsenv.both_statuses(name)
    assert running.state == "running" and running.ip and running.started_at
    assert listed(wsenv, name) == "running"

    wsenv.incus("stop", "--force", instance)
    assert wsenv.both_statuses(name).state == "stopped"
    assert listed(wsenv, name) == "stopped"

    wsenv.ws("down", name)
    wsenv.incus("init", wsenv.ws_image_alias(), instance)  # someone else's instance of that name
    try:
        foreign = wsenv.both_statuses(name)
        assert foreign.state == "error" and "not created by ws" in foreign.detail
        assert listed(wsenv, name) == "error"
    finally:
        wsenv.incus("delete", "--force", instance, check=False)
