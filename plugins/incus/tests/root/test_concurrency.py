"""Parallel ``ws up`` processes on the real daemon: per-workspace locks, no global one.

Different workspaces come up at the same time; several ``ws up`` of one workspace end with exactly one
running instance (the workspace lock serializes them; the later ones find it running and unchanged).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.root


def _wait_all(processes) -> list[tuple[int, str, str]]:
    return [(p.wait(timeout=600), *p.communicate()) for p in processes]


def test_four_workspaces_come_up_at_once(wsenv):
    names = [wsenv.name(f"par{i}") for i in range(1, 5)]
    try:
        results = _wait_all([wsenv.popen("up", name) for name in names])
        for name, (code, _out, err) in zip(names, results, strict=True):
            assert code == 0, f"ws up {name}: {err}"
        assert wsenv.running(names) == sorted(f"workspace-{name}" for name in names)
        macs = {wsenv.instance(f"workspace-{name}")["devices"]["eth0"]["hwaddr"] for name in names}
        assert len(macs) == 4
    finally:
        _wait_all([wsenv.popen("down", name) for name in names])
    assert wsenv.instances(names) == {}


def test_three_ups_of_one_workspace_leave_one_instance(wsenv):
    name = wsenv.name("same")
    try:
        results = _wait_all([wsenv.popen("up", name, "--json") for _ in range(3)])
        assert [code for code, _, _ in results] == [0, 0, 0], [err for _, _, err in results]
        actions = sorted(out.split('"action": "')[1].split('"')[0] for _, out, _ in results)
        assert actions == ["created", "unchanged", "unchanged"]
        assert wsenv.running([name]) == [f"workspace-{name}"]
    finally:
        wsenv.ws("down", name)
