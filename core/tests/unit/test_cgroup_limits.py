"""Where the detached supervisor writes cpus and memory, on a cgroup2 host and on a hybrid (v1) host.

The files are a folder tree standing in for the cgroup mounts; the root tier checks the limits on this host's
real cgroups with a real container (plugins/nspawn/tests/root/test_limits.py). This covers the cgroup2 path,
which this host (hybrid: cpu and memory in v1) cannot run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ws.supervise import cgroups


def _unified(tmp_path: Path, controllers: str) -> Path:
    root = tmp_path / "unified"
    root.mkdir()
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_cgroup2_gets_cpu_max_and_memory_max_with_the_controllers_enabled_above(tmp_path, monkeypatch):
    root = _unified(tmp_path, "cpuset cpu io memory pids")
    monkeypatch.setattr(cgroups, "mounts", lambda: [("cgroup2", set(), root)])
    folders, applied = cgroups.create("ws-nspawn-a", cpus=1.5, memory_mib=256)
    service = root / "ws.supervise" / "ws-nspawn-a"
    assert folders == [service]
    assert (service / "cpu.max").read_text() == "150000 100000"
    assert (service / "memory.max").read_text() == str(256 * 2**20)
    # Written one controller at a time (the kernel takes "+cpu", a stand-in file keeps the last write).
    assert (root / "cgroup.subtree_control").read_text() == "+memory"
    assert (root / "ws.supervise" / "cgroup.subtree_control").read_text() == "+memory"
    assert applied == ["cpu: cpu.max=150000 100000 (cgroup2)", f"memory: memory.max={256 * 2**20} (cgroup2)"]


def test_a_hybrid_host_takes_the_limits_in_its_v1_hierarchies(tmp_path, monkeypatch):
    root = _unified(tmp_path, "")  # cpu and memory are bound to v1 hierarchies
    cpu, memory = tmp_path / "cpu,cpuacct", tmp_path / "memory"
    monkeypatch.setattr(
        cgroups,
        "mounts",
        lambda: [
            ("cgroup2", set(), root),
            ("cgroup", {"rw", "cpu", "cpuacct"}, cpu),
            ("cgroup", {"rw", "memory"}, memory),
        ],
    )
    folders, applied = cgroups.create("ws-nspawn-b", cpus=2, memory_mib=1024)
    assert folders == [
        root / "ws.supervise/ws-nspawn-b",
        cpu / "ws.supervise/ws-nspawn-b",
        memory / "ws.supervise/ws-nspawn-b",
    ]
    assert (cpu / "ws.supervise/ws-nspawn-b/cpu.cfs_quota_us").read_text() == "200000"
    assert (cpu / "ws.supervise/ws-nspawn-b/cpu.cfs_period_us").read_text() == "100000"
    assert (memory / "ws.supervise/ws-nspawn-b/memory.limit_in_bytes").read_text() == str(2**30)
    assert [line.split(":")[0] for line in applied] == ["cpu", "memory"] and all("(cgroup v1)" in a for a in applied)


@pytest.mark.parametrize(("cpus", "memory_mib"), [(None, None), (1, None)])
def test_only_asked_limits_are_planned_and_a_missing_controller_is_said(tmp_path, monkeypatch, cpus, memory_mib):
    root = _unified(tmp_path, "pids")
    monkeypatch.setattr(cgroups, "mounts", lambda: [("cgroup2", set(), root)])
    folders, applied = cgroups.create("ws-nspawn-c", cpus=cpus, memory_mib=memory_mib)
    assert folders == [root / "ws.supervise" / "ws-nspawn-c"]
    expected = [] if cpus is None else ["cpu: not applied (no writable cgroup hierarchy has the cpu controller)"]
    assert applied == expected
    assert not (root / "ws.supervise" / "ws-nspawn-c" / "cpu.max").exists()
