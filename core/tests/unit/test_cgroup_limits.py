"""Where the detached supervisor writes cpus and memory, on a cgroup2 host and on a hybrid (v1) host, and how
a process started later (ws exec) finds and joins a service's cgroups.

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


def test_cgroups_of_a_process_are_found_where_mounted_read_write_and_joined(tmp_path, monkeypatch):
    unified, cpu, named = tmp_path / "unified", tmp_path / "cpu,cpuacct", tmp_path / "systemd"
    monkeypatch.setattr(
        cgroups,
        "mounts",
        lambda: [
            ("cgroup2", set(), unified),
            ("cgroup", {"rw", "cpu", "cpuacct"}, cpu),
            ("cgroup", {"rw", "name=systemd"}, named),
        ],
    )
    service = "/ws.supervise/ws-nspawn-d"
    membership = f"9:name=systemd:{service}/payload/init.scope\n8:pids:/\n2:cpu,cpuacct:{service}\n0::{service}/x\n"
    folders = cgroups.folders_of(membership)  # pids: not mounted read-write here, so not joined
    assert folders == [named / f"{service[1:]}/payload/init.scope", cpu / service[1:], unified / f"{service[1:]}/x"]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "cgroup.procs").write_text("")
    cgroups.join(folders)
    assert all((folder / "cgroup.procs").read_text() == "0" for folder in folders)
    with pytest.raises(OSError):
        cgroups.join([tmp_path / "gone"])
