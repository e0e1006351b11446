"""Crash safety: a ``ws up`` killed at any point converges on the next ``ws up``; a killed nspawn too; ``ws down``
afterwards leaves no process, veth, overlay, mount or id range claim behind."""

from __future__ import annotations

import os
import signal
import time

import pytest

pytestmark = pytest.mark.root


@pytest.mark.parametrize("delay", [0.3, 0.8, 1.3, 2.0])
def test_a_killed_up_converges_on_the_next_up(nsenv, delay):
    name = nsenv.name("crash")
    process = nsenv.popen("up", name)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    result = nsenv.ws("up", name, "--json")
    assert '"state": "running"' in result.stdout
    login = nsenv.ssh(name, "cat /proc/1/comm")
    assert login.returncode == 0 and login.stdout.strip() == "systemd", login.stderr
    nsenv.ws("down", name)
    assert nsenv.leftovers(name) == []


def test_a_killed_nspawn_is_noticed_and_cleaned_away(nsenv):
    name = nsenv.name("crash")
    nsenv.ws("up", name)
    pid = nsenv.status(name)["extra"]["pid"]
    os.kill(pid, signal.SIGKILL)  # the guest lives on without its nspawn
    deadline = time.monotonic() + 30
    while nsenv.status(name)["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    status = nsenv.status(name)
    assert status["state"] == "error" and "guest still runs" in status["detail"]
    assert '"state": "running"' in nsenv.ws("up", name, "--json").stdout
    assert nsenv.ssh(name, "true").returncode == 0
    nsenv.ws("down", name)
    assert nsenv.leftovers(name) == []
