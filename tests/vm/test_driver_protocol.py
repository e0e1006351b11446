"""Unit tier: the driver's protocol against the real guest backdoor script, with a local bash in place of the
VM (a stand-in "qemu" accepts the driver on a unix socket and hands the connection to the script). Covers
framing, exit status, the stdout/stderr split, timeouts and a VM that dies, in a second instead of a boot.
The commands run on this host: keep them harmless, and never call ``shutdown()`` here (it powers off)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ws_testing
from ws_testing.machine import CommandFailed, Machine
from ws_testing.qemu import Qemu

BACKDOOR = Path(ws_testing.__file__).parent / "guest/rootfs/usr/local/libexec/ws-backdoor"
STAND_IN = """
import os, socket, sys
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[1])
server.listen(1)
conn, _ = server.accept()
os.dup2(conn.fileno(), 0)
os.dup2(conn.fileno(), 1)
os.execv(sys.argv[2], [sys.argv[2], "-"])
"""


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    sock = tmp_path / "backdoor.sock"
    process = subprocess.Popen(
        [sys.executable, "-c", STAND_IN, str(sock), str(BACKDOOR)],
        env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)}, cwd=tmp_path, start_new_session=True,
    )  # fmt: skip
    (tmp_path / "qemu.err").write_text("")
    machine = Machine(Qemu(process, tmp_path, "none", tmp_path / "console.log", sock, tmp_path, time.monotonic()))
    try:
        machine.connect(timeout=10)
        yield machine
    finally:
        machine.close()


def test_stdout_and_stderr_come_back_apart_and_status_is_kept(machine: Machine) -> None:
    assert machine.succeed("printf 'one\\ntwo: ü\\n'; echo noise >&2") == "one\ntwo: ü\n"
    result = machine.execute("echo out; echo err >&2; exit 7")
    assert (result.status, result.stdout, result.stderr) == (7, "out\n", "err\n")
    with pytest.raises(CommandFailed, match="exited 7") as failed:
        machine.succeed("echo out; echo err >&2; exit 7")
    assert "out" in str(failed.value) and "err" in str(failed.value)
    assert machine.fail("echo why >&2; false") == "why\n"


def test_a_command_that_hangs_times_out_and_the_next_one_still_works(machine: Machine) -> None:
    started = time.monotonic()
    assert machine.execute("sleep 60", timeout=1).status == 124
    assert time.monotonic() - started < 10
    assert machine.succeed("echo after") == "after\n"


def test_wait_until_succeeds_retries_then_gives_up_with_the_last_output(machine: Machine, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    machine.succeed(f"(sleep 2; touch {flag}) >/dev/null 2>&1 &")
    machine.wait_until_succeeds(f"test -e {flag}", timeout=20)
    with pytest.raises(CommandFailed, match="still failing after 2s") as failed:
        machine.wait_until_succeeds("echo not yet >&2; false", timeout=2)
    assert "not yet" in str(failed.value)


def test_a_vm_that_dies_fails_the_command_at_once(machine: Machine) -> None:
    machine.qemu.kill()
    started = time.monotonic()
    with pytest.raises((RuntimeError, ConnectionError)):
        machine.execute("echo never", timeout=60)
    assert time.monotonic() - started < 5
