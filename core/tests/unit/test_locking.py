"""flock-based locks between real processes: mutual exclusion, no stale lock after SIGKILL, a timeout
that names the lock, and independent resources in parallel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from ws import locking

HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from ws.locking import lock
    state, kind, name, seconds, record = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
    with lock(state, kind, name, timeout=30):
        start = time.monotonic()
        print("locked", flush=True)
        time.sleep(seconds)
        end = time.monotonic()
    Path(record).write_text(f"{start} {end}")
    """
)

COUNT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ws.locking import lock
    state, rounds = Path(sys.argv[1]), int(sys.argv[2])
    counter = state / "counter"
    for _ in range(rounds):
        with lock(state, "workspace", "counter", timeout=60):
            value = int(counter.read_text())
            counter.write_text(str(value + 1))
    """
)


def python(script: str, *args: object, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], **kwargs)


def test_concurrent_processes_never_lose_an_update(tmp_path: Path) -> None:
    processes, rounds = 4, 150
    (tmp_path / "counter").write_text("0")
    workers = [python(COUNT, tmp_path, rounds) for _ in range(processes)]
    assert [w.wait(timeout=120) for w in workers] == [0] * processes
    assert int((tmp_path / "counter").read_text()) == processes * rounds


def test_lock_of_a_killed_process_is_free_at_once(tmp_path: Path) -> None:
    holder = python(HOLD, tmp_path, "workspace", "dev", 300, tmp_path / "never", stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(locking.LockTimeout), locking.lock(tmp_path, "workspace", "dev", timeout=0.2):
            pass  # really held
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        started = time.monotonic()
        with locking.lock(tmp_path, "workspace", "dev", timeout=5):
            waited = time.monotonic() - started
        assert waited < 0.5, f"waited {waited:.2f} s for a dead process's lock"
    finally:
        holder.kill()
        holder.wait()


def test_timeout_names_the_lock(tmp_path: Path) -> None:
    holder = python(HOLD, tmp_path, "image", "debian", 300, tmp_path / "never", stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(locking.LockTimeout) as caught, locking.lock(tmp_path, "image", "debian", timeout=0.3):
            pass
        assert 0.3 <= time.monotonic() - started < 2
        message = str(caught.value)
        assert message.startswith("image-debian is busy") and str(tmp_path / "locks" / "image-debian.lock") in message
        assert caught.value.exit_code == 1
    finally:
        holder.kill()
        holder.wait()


def _intervals(tmp_path: Path, names: list[str], seconds: float) -> list[tuple[float, float]]:
    records = [tmp_path / f"record-{i}" for i in range(len(names))]
    holders = [
        python(HOLD, tmp_path, "workspace", name, seconds, record, stdout=subprocess.DEVNULL)
        for name, record in zip(names, records, strict=True)
    ]
    assert [h.wait(timeout=60) for h in holders] == [0] * len(holders)
    return sorted(tuple(map(float, r.read_text().split())) for r in records)  # type: ignore[misc]


def test_different_workspaces_do_not_block_each_other(tmp_path: Path) -> None:
    (a_start, a_end), (b_start, b_end) = _intervals(tmp_path, ["a", "b"], 1.0)
    overlap = min(a_end, b_end) - max(a_start, b_start)
    assert overlap > 0.5, f"workspace-a and workspace-b overlapped only {overlap:.2f} s"


def test_the_same_workspace_is_serialized(tmp_path: Path) -> None:
    (_, first_end), (second_start, _) = _intervals(tmp_path, ["a", "a"], 0.4)
    assert second_start >= first_end


def test_shared_locks_coexist_and_exclude_writers(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "image-x.lock"
    with (
        locking.file_lock(path, shared=True),
        locking.file_lock(path, shared=True, timeout=0.2),  # a second reader gets in
        pytest.raises(locking.LockTimeout),
        locking.file_lock(path, timeout=0.2),  # a writer does not
    ):
        pass
    with locking.file_lock(path, timeout=0.2):
        pass


def test_lock_files_and_kinds(tmp_path: Path) -> None:
    assert locking.lock_path(tmp_path, "network", "sandbox") == tmp_path / "locks" / "network-sandbox.lock"
    with pytest.raises(ValueError, match="unknown lock kind"):
        locking.lock_path(tmp_path, "everything", "x")
    with locking.lock(tmp_path, "backend", "incus"):
        assert (tmp_path / "locks" / "backend-incus.lock").exists()
    assert locking.lock_path(tmp_path, "backend", "incus").stat().st_mode & 0o022 == 0  # nobody else can write
