"""The detached supervisor against real processes: detaching, pid-reuse safety, stop escalation, logs, env."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from ws.supervise import ServiceSpec, SupervisorError
from ws.supervise.detached import DetachedSupervisor
from ws.supervise.procfs import start_ticks

pytestmark = pytest.mark.root


@pytest.fixture
def supervisor(tmp_path):
    supervisor = DetachedSupervisor(tmp_path / "run")
    started: list[str] = []
    original_start = supervisor.start

    def start(spec):
        started.append(spec.name)
        return original_start(spec)

    supervisor.start = start
    yield supervisor
    for name in started:
        supervisor.stop(name, timeout=1)


def _spec(tmp_path: Path, script: str, **options) -> ServiceSpec:
    name = f"ws-test-{uuid.uuid4().hex[:8]}"
    return ServiceSpec(name=name, argv=["sh", "-c", script], log_file=tmp_path / f"{name}.log", **options)


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_service_runs_detached_in_its_own_session_with_a_clean_environment(supervisor, tmp_path, monkeypatch):
    monkeypatch.setenv("WS_TEST_SECRET", "hunter2")
    spec = _spec(tmp_path, "echo out; echo err >&2; exec sleep 60", environment={"GREETING": "hello"})
    opened = os.open(os.devnull, os.O_RDONLY)
    passed_on = os.dup2(opened, 90)  # inheritable, as what ws's own parent may pass on
    os.close(opened)
    try:
        pid = supervisor.start(spec)
    finally:
        os.close(passed_on)

    status = supervisor.status(spec.name)
    assert status.running and status.pid == pid
    assert abs(status.started_at - time.time()) < 10
    assert os.getsid(pid) != os.getsid(0)
    assert os.getpgid(pid) != os.getpgid(0)
    ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert ppid != os.getpid()  # double fork: not our child, nothing for us to reap
    environ = dict(
        entry.split("=", 1) for entry in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if entry
    )
    assert environ["GREETING"] == "hello"
    assert set(environ) <= {"PATH", "GREETING", "PWD"}  # PWD: set by sh itself
    assert "90" not in os.listdir(f"/proc/{pid}/fd")  # only what the service is given
    assert _wait_for(lambda: supervisor.logs(spec.name) == "out\nerr\n")
    assert oct(spec.log_file.stat().st_mode & 0o777) == "0o600"


def test_stop_ends_the_service_and_stopping_again_or_an_absent_service_succeeds(supervisor, tmp_path):
    spec = _spec(tmp_path, "echo first run; exec sleep 60")
    pid = supervisor.start(spec)
    assert supervisor.stop(spec.name) is True
    assert not supervisor.status(spec.name).running
    assert start_ticks(pid) is None
    assert supervisor.stop(spec.name) is False
    assert supervisor.stop("ws-test-never-started") is False
    supervisor.start(spec)  # the log is appended to, not replaced
    assert _wait_for(lambda: supervisor.logs(spec.name) == "first run\nfirst run\n")
    assert supervisor.logs(spec.name, lines=1) == "first run\n"


def test_a_service_ignoring_its_stop_signal_is_killed_after_the_timeout(supervisor, tmp_path):
    spec = _spec(tmp_path, "trap '' TERM; echo ready; while :; do sleep 0.1; done")
    pid = supervisor.start(spec)
    assert _wait_for(lambda: "ready" in supervisor.logs(spec.name))
    began = time.monotonic()
    assert supervisor.stop(spec.name, timeout=0.5) is True
    assert 0.4 < time.monotonic() - began < 5
    assert start_ticks(pid) is None
    assert not supervisor.status(spec.name).running


def test_the_stop_signal_of_the_spec_is_sent(supervisor, tmp_path):
    spec = _spec(
        tmp_path, "trap 'echo got HUP; exit 0' HUP; echo ready; while :; do sleep 0.1; done", stop_signal=signal.SIGHUP
    )
    supervisor.start(spec)
    assert _wait_for(lambda: "ready" in supervisor.logs(spec.name))
    supervisor.stop(spec.name, timeout=5)
    assert "got HUP" in supervisor.logs(spec.name)


def test_a_reused_pid_is_neither_reported_running_nor_signalled(supervisor, tmp_path):
    spec = _spec(tmp_path, "exec sleep 60")
    supervisor.start(spec)
    record_file = supervisor.run_dir / f"{spec.name}.json"

    record = json.loads(record_file.read_text())
    supervisor.stop(spec.name)
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        # The record now names a live process with the same pid but another start time: a reused pid.
        record.update(pid=bystander.pid, pgid=os.getpgid(bystander.pid), ticks=start_ticks(bystander.pid) - 1)
        record_file.write_text(json.dumps(record))
        assert not supervisor.status(spec.name).running
        assert supervisor.stop(spec.name, timeout=0.2) is False
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_the_service_outlives_the_process_that_started_it(supervisor, tmp_path):
    spec = _spec(tmp_path, "exec sleep 60")
    starter = textwrap.dedent(
        f"""
        from pathlib import Path
        from ws.supervise import ServiceSpec
        from ws.supervise.detached import DetachedSupervisor
        DetachedSupervisor(Path({str(supervisor.run_dir)!r})).start(
            ServiceSpec(name={spec.name!r}, argv=["sleep", "60"], log_file=Path({str(spec.log_file)!r})))
        """
    )
    subprocess.run([sys.executable, "-c", starter], check=True, timeout=30)
    status = supervisor.status(spec.name)
    assert status.running
    assert supervisor.stop(spec.name) is True


def test_starting_a_running_service_or_a_missing_program_is_a_sentence(supervisor, tmp_path):
    spec = _spec(tmp_path, "exec sleep 60")
    pid = supervisor.start(spec)
    with pytest.raises(SupervisorError, match=f"already running \\(pid {pid}\\)"):
        supervisor.start(spec)
    missing = ServiceSpec(name="ws-test-missing", argv=["/nonexistent/ws-program"], log_file=tmp_path / "m.log")
    with pytest.raises(SupervisorError, match="ws-program not found"):
        supervisor.start(missing)
    with pytest.raises(SupervisorError, match="invalid service name"):
        supervisor.status("../escape")


def test_a_program_that_cannot_be_executed_is_reported(supervisor, tmp_path):
    script = tmp_path / "not-a-program"
    script.write_bytes(b"\x00garbage")
    script.chmod(0o755)
    spec = ServiceSpec(name="ws-test-noexec", argv=[str(script)], log_file=tmp_path / "n.log")
    with pytest.raises(SupervisorError, match="Exec format error"):
        supervisor.start(spec)
    assert not supervisor.status(spec.name).running


def test_what_a_service_leaves_in_its_cgroup_is_killed_at_stop(supervisor, tmp_path):
    marker = f"3000.{uuid.uuid4().int % 10**8}"  # a sleep duration no other process has
    spec = _spec(tmp_path, f"setsid sleep {marker} & echo started; exec sleep 300")
    supervisor.start(spec)
    assert _wait_for(lambda: "started" in supervisor.logs(spec.name))
    assert _wait_for(lambda: _pids_named(marker))
    orphan = _pids_named(marker)[0]
    assert os.getsid(orphan) != os.getsid(supervisor.status(spec.name).pid)  # not in the service's session
    assert supervisor.stop(spec.name) is True
    assert start_ticks(orphan) is None
    for hierarchy in ("unified", "systemd"):
        assert not Path(f"/sys/fs/cgroup/{hierarchy}/ws.supervise/{spec.name}").exists()


def test_a_child_left_by_a_killed_service_is_killed_before_the_next_start(supervisor, tmp_path):
    marker = f"3000.{uuid.uuid4().int % 10**8}"  # a sleep duration no other process has
    spec = _spec(tmp_path, f"setsid sleep {marker} & echo started; exec sleep 300")
    pid = supervisor.start(spec)
    assert _wait_for(lambda: _pids_named(marker))
    orphan = _pids_named(marker)[0]
    os.kill(pid, signal.SIGKILL)  # the service dies; its child lives on
    assert _wait_for(lambda: not supervisor.status(spec.name).running)
    assert start_ticks(orphan) is not None
    supervisor.start(spec)
    assert start_ticks(orphan) is None


def _pids_named(name: str) -> list[int]:
    """Pids of ``sleep NAME``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == f"sleep\0{name}\0".encode():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
