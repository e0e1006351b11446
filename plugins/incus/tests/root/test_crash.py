"""Crash safety: ``ws up`` killed with SIGKILL at each stage, then ``ws up`` converges and ``ws down``
leaves nothing of the workspace behind.

The stage is observed from outside, on the daemon and in /proc, and the test checks that the kill really
happened in that stage (otherwise it would prove nothing).
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import signal
import socket
import time

import pytest

pytestmark = pytest.mark.root
SOCKET = "/var/lib/incus/unix.socket"


class _UnixHTTP(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(SOCKET)


def _get(path: str, project: str) -> dict | None:
    """``GET /1.0/<path>`` in ``project`` straight from the socket (a few ms, so short stages can be caught)."""
    connection = _UnixHTTP("localhost")
    try:
        connection.request("GET", f"/1.0/{path}{'&' if '?' in path else '?'}project={project}")
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    return None if response.status == 404 else body["metadata"]


def _instance_status(instance: str, project: str) -> str | None:
    metadata = _get(f"instances/{instance}", project)
    return None if metadata is None else metadata["status"]


def _busy(instance: str, project: str) -> bool:
    """An operation (create, start, ...) on the instance is still running on the daemon."""
    running = (_get("operations?recursion=1", project) or {}).get("running") or []
    url = f"/1.0/instances/{instance}?project={project}"
    return any(url in (op.get("resources") or {}).get("instances", ()) for op in running)


def _reading_rootfs(pid: int) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").endswith("/rootfs.tar"):
                return True
        except OSError:
            continue
    return False


def _kill_when(process, condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"ws up finished before {what}: {process.communicate()[1]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"ws up did not reach {what} within {timeout:.0f} s")
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    process.communicate()


STAGES = ("during image import", "during create", "after create", "after start")


@pytest.mark.parametrize("stage", STAGES)
def test_killed_up_converges(wsenv, stage):
    name = wsenv.name("crash")
    instance = f"workspace-{name}"
    if stage == "during image import":  # the session's project holds only its own images
        wsenv.remove_unused_ws_images()
        held = [i["fingerprint"][:12] for i in wsenv.incus_json("image", "list") if i["properties"].get("ws.name")]
        assert not held, f"ws images {held} are still in use in the session's project"
    status = functools.partial(_instance_status, project=wsenv.project)
    busy = functools.partial(_busy, project=wsenv.project)
    process = wsenv.popen("up", name)
    if stage == "during image import":
        _kill_when(process, lambda: _reading_rootfs(process.pid), "the image import")
    elif stage == "during create":  # the new instance is made as -next, then renamed
        _kill_when(process, lambda: status(f"{instance}-next") == "Stopped" and busy(f"{instance}-next"), "the create")
    elif stage == "after create":
        _kill_when(process, lambda: status(instance) == "Stopped" and not busy(instance), "the created instance")
    else:
        _kill_when(process, lambda: status(instance) == "Running", "the started instance")

    wsenv.ws("up", name)
    assert status(instance) == "Running"
    assert wsenv.ws("exec", name, "--", "true").returncode == 0
    assert wsenv.running([name]) == [instance]

    wsenv.ws("down", name)
    assert wsenv.instances([name]) == {}
    assert status(instance) is None
    pending = [op for op in wsenv.incus_json("operation", "list") if op["status"] == "Running" and name in str(op)]
    assert pending == []
