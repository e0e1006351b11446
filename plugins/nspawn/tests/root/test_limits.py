"""cpus and memory of an nspawn workspace under the detached supervisor: written into the service's own
cgroups before nspawn runs, so the guest's processes and the commands of ``ws exec`` are counted and held to
them; gone with ``ws down``."""

from __future__ import annotations

import os
import secrets
import signal
import time
from pathlib import Path

import pytest
from ws.supervise import cgroups
from ws_plugin_nspawn.machine import container_init

pytestmark = pytest.mark.root
MEMORY_MIB = 256
HOG = f"head -c {MEMORY_MIB * 2}M /dev/zero | tail; echo status=$?"
"""More than the limit: the kernel's OOM killer ends ``tail`` (no swap to move it to on this host)."""


@pytest.fixture(scope="module")
def limited(nsenv):
    """Workspace ``lim`` configured with ``cpus = 1`` and ``memory = "256M"``; where each limit goes.

    Each test brings it up itself (``ws up`` of a running, unchanged workspace does nothing), so the tests
    hold in any order; it is down after the module, whatever failed."""
    name = nsenv.name("lim")
    plans = cgroups.planned_limits(f"ws-nspawn-{name}", 1, MEMORY_MIB)
    missing = [plan for plan in plans if isinstance(plan, str)]
    if missing:
        pytest.fail(f"this host's cgroups cannot take the limits the test checks: {missing}")
    nsenv.workspace_keys[name] = ["cpus = 1", f'memory = "{MEMORY_MIB}M"']
    nsenv.write_config()
    try:
        yield name, plans
    finally:
        nsenv.workspace_keys.pop(name, None)
        nsenv.write_config()
        nsenv.ws("down", name, check=False)


def _cgroup_of(pid: int, hierarchy: str, mount: Path) -> Path:
    """The folder of ``pid``'s cgroup in the hierarchy mounted at ``mount`` (``0::`` for cgroup2)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if (hierarchy == "cgroup2" and number == "0") or (
            hierarchy != "cgroup2" and mount.name in controllers.split(",")
        ):
            return mount / path.lstrip("/")
    raise AssertionError(f"pid {pid} is in no cgroup of {mount}")


def _assert_held(pid: int, plans: list[cgroups.Limit]) -> None:
    """``pid`` is in each limit's folder or below it, in that limit's hierarchy."""
    for plan in plans:
        folder = _cgroup_of(pid, plan.hierarchy, plan.folder.parent.parent)
        assert folder == plan.folder or plan.folder in folder.parents, f"pid {pid} in {folder}, not {plan.folder}"


def _counter(folder: Path, file: str, key: str | None) -> int:
    text = (folder / file).read_text()
    if key is None:
        return int(text)
    return int(dict(line.split() for line in text.splitlines())[key])


def _ooms(memory: cgroups.Limit) -> int:
    if memory.hierarchy == "cgroup2":
        return _counter(memory.folder, "memory.events", "oom_kill")
    return _counter(memory.folder, "memory.failcnt", None)


def test_cpus_and_memory_hold_the_guest(nsenv, limited):
    name, plans = limited
    nsenv.ws("up", name)
    status = nsenv.status(name)
    assert [line.split(":")[0] for line in status["extra"]["limits"]] == ["cpu", "memory"], status
    _assert_held(container_init(status["extra"]["pid"]), plans)
    for plan in plans:
        for file, value in plan.files:
            assert (plan.folder / file).read_text().split() == value.split(), file

    cpu, memory = plans
    periods_before = _counter(cpu.folder, "cpu.stat", "nr_periods")
    # Busy loops in the guest run under the bandwidth control of the quota (periods counted; on an idle
    # host of two or more cores they are also throttled, which a loaded host cannot promise).
    busy = nsenv.ssh(name, "for i in 1 2 3 4; do timeout 1 sh -c 'while :; do :; done' & done; wait; echo done")
    assert busy.stdout.strip() == "done", busy.stderr
    assert _counter(cpu.folder, "cpu.stat", "nr_periods") >= periods_before + 5

    ooms_before = _ooms(memory)
    hog = nsenv.ssh(name, HOG)
    assert "status=137" in hog.stdout, (hog.stdout, hog.stderr)
    assert _ooms(memory) > ooms_before
    assert nsenv.ssh(name, "echo alive").stdout.strip() == "alive"  # the guest itself lives on


def test_exec_runs_in_the_guests_cgroups_under_its_limits(nsenv, limited):
    name, plans = limited
    nsenv.ws("up", name)
    init = container_init(nsenv.status(name)["extra"]["pid"])
    argv = [b"sleep", f"600.{secrets.randbelow(10**6):06d}".encode()]  # to find it among the host's processes
    sleeper = nsenv.popen("exec", name, "--", *(arg.decode() for arg in argv))
    try:
        pid = _wait_for_process(argv, sleeper)
        assert Path(f"/proc/{pid}/cgroup").read_text() == Path(f"/proc/{init}/cgroup").read_text()
        _assert_held(pid, plans)
    finally:
        for pid in _processes(argv):
            os.kill(pid, signal.SIGKILL)
        sleeper.communicate(timeout=60)

    memory = plans[1]
    ooms_before = _ooms(memory)
    hog = nsenv.ws("exec", name, "--", "sh", "-c", HOG, check=False)
    assert "status=137" in hog.stdout, (hog.stdout, hog.stderr)
    assert _ooms(memory) > ooms_before


def test_the_limit_cgroups_go_with_ws_down(nsenv, limited):
    name, plans = limited
    nsenv.ws("up", name)
    assert all(plan.folder.is_dir() for plan in plans)
    nsenv.ws("down", name)
    assert not [plan.folder for plan in plans if plan.folder.exists()], "the limit cgroups outlived ws down"


def _processes(argv: list[bytes]) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if Path(entry.path, "cmdline").read_bytes().split(b"\0")[:-1] == argv:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait_for_process(argv: list[bytes], runner, timeout: float = 60) -> int:
    """The host pid of the one process running ``argv``, once it runs (``runner`` is the ws starting it)."""
    deadline = time.monotonic() + timeout
    while not (found := _processes(argv)):
        if runner.poll() is not None:
            pytest.fail(f"ws exec ended before its command ran: {runner.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{argv} did not start within {timeout} s")
        time.sleep(0.05)
    assert len(found) == 1, found
    return found[0]
