"""cpus and memory of an nspawn workspace under the detached supervisor: written into the service's own
cgroups before nspawn runs, so the guest's processes are counted and held to them; gone with ``ws down``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ws.supervise import cgroups

pytestmark = pytest.mark.root
MEMORY_MIB = 256


def _cgroup_of(pid: int, hierarchy: str, mount: Path) -> Path:
    """The folder of ``pid``'s cgroup in the hierarchy mounted at ``mount`` (``0::`` for cgroup2)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if (hierarchy == "cgroup2" and number == "0") or (
            hierarchy != "cgroup2" and mount.name in controllers.split(",")
        ):
            return mount / path.lstrip("/")
    raise AssertionError(f"pid {pid} is in no cgroup of {mount}")


def _counter(folder: Path, file: str, key: str | None) -> int:
    text = (folder / file).read_text()
    if key is None:
        return int(text)
    return int(dict(line.split() for line in text.splitlines())[key])


def test_cpus_and_memory_hold_the_guest(nsenv):
    name = nsenv.name("lim")
    plans = [plan for plan in cgroups.planned_limits(f"ws-nspawn-{name}", 1, MEMORY_MIB)]
    missing = [plan for plan in plans if isinstance(plan, str)]
    if missing:
        pytest.fail(f"this host's cgroups cannot take the limits the test checks: {missing}")
    nsenv.workspace_keys[name] = ["cpus = 1", f'memory = "{MEMORY_MIB}M"']
    nsenv.write_config()
    try:
        nsenv.ws("up", name)
        status = nsenv.status(name)
        assert [line.split(":")[0] for line in status["extra"]["limits"]] == ["cpu", "memory"], status
        init = int(
            Path(f"/proc/{status['extra']['pid']}/task/{status['extra']['pid']}/children").read_text().split()[0]
        )
        for plan in plans:
            mount = plan.folder.parent.parent
            folder = _cgroup_of(init, plan.hierarchy, mount)
            assert folder == plan.folder or plan.folder in folder.parents, f"guest init in {folder}"
            for file, value in plan.files:
                assert (plan.folder / file).read_text().split() == value.split(), file

        cpu, memory = plans
        v2 = cpu.hierarchy == "cgroup2"
        periods_before = _counter(cpu.folder, "cpu.stat", "nr_periods")
        # Busy loops in the guest run under the bandwidth control of the quota (periods counted; on an idle
        # host of two or more cores they are also throttled, which a loaded host cannot promise).
        busy = nsenv.ssh(name, "for i in 1 2 3 4; do timeout 1 sh -c 'while :; do :; done' & done; wait; echo done")
        assert busy.stdout.strip() == "done", busy.stderr
        assert _counter(cpu.folder, "cpu.stat", "nr_periods") >= periods_before + 5

        # More than the limit: the kernel's OOM killer ends the hog (no swap to move it to on this host).
        hog = nsenv.ssh(name, f"head -c {MEMORY_MIB * 2}M /dev/zero | tail; echo status=$?")
        assert "status=137" in hog.stdout, (hog.stdout, hog.stderr)
        if v2:
            assert _counter(memory.folder, "memory.events", "oom_kill") >= 1
        else:
            assert _counter(memory.folder, "memory.failcnt", None) >= 1
        assert nsenv.ssh(name, "echo alive").stdout.strip() == "alive"  # the guest itself lives on

        nsenv.ws("down", name)
        time.sleep(0.1)
        assert not any(plan.folder.exists() for plan in plans), "the limit cgroups outlived ws down"
    finally:
        nsenv.workspace_keys.pop(name, None)
        nsenv.write_config()
        nsenv.ws("down", name, check=False)
