"""When is a started workspace usable: systemd reached its default target and sshd accepts connections.

The first is asked inside the guest with one background exec (no websocket) that blocks until systemd's
start-up job queue is empty; ``running`` and ``degraded`` both mean the default target was reached. The
second is core's readiness check (:func:`ws.readiness.sshd_answers`: sshd's banner on the workspace's
address, from the host) when the daemon is local (the host sits on the bridge); on a remote server it is
checked inside the guest. On timeout the error carries the end of the instance's console log, where
systemd reports what it is stuck on.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ws.errors import WsError
from ws.readiness import sshd_answers

if TYPE_CHECKING:
    from ws.types import Workspace

    from ws_plugin_incus.client import Api

BOOTED = (
    "systemctl is-system-running --wait >/dev/null 2>&1; "
    'case "$(systemctl is-system-running 2>/dev/null)" in running|degraded) exit 0;; esac; exit 1'
)
SSHD_LISTENING = "ss -Hltn 'sport = :22' | grep -q ."
POLL = 0.1
LOG_LINES = 25


def wait_until_ready(api: Api, workspace: Workspace, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    name = workspace.instance_name
    phase = "systemd to reach its default target"
    try:
        _until(lambda: run(api, name, ["sh", "-c", BOOTED], deadline) == 0, deadline)
        phase = f"sshd to listen on {workspace.ip}:22"
        if api.settings.remote:
            _until(lambda: run(api, name, ["sh", "-c", SSHD_LISTENING], deadline) == 0, deadline)
        else:
            _until(lambda: sshd_answers(workspace.ip), deadline)  # core's check, shared by every backend
    except TimeoutError:
        raise WsError(
            f"{name} did not become usable within {timeout:.0f} s (waiting for {phase}); "
            f"last lines of its console log:\n{console_tail(api, name)}"
        ) from None


def run(api: Api, instance: str, command: list[str], deadline: float) -> int:
    """Run ``command`` in the instance as root without attaching to it; its exit status (-1: no answer)."""
    from ws_plugin_incus.errors import IncusError

    doing = f"checking {instance}"
    body = {"command": command, "wait-for-websocket": False, "interactive": False, "record-output": False}
    try:
        operation = api.raw("post", f"instances/{instance}/exec", doing, json=body).json()["operation"]
        remaining = max(1, int(deadline - time.monotonic()))
        result = api.request("get", f"{operation.removeprefix('/1.0/')}/wait", doing, params={"timeout": remaining})
    except IncusError:
        return -1  # the guest is not far enough to run anything yet
    if result.get("status_code") != 200:
        return -1
    return int((result.get("metadata") or {}).get("return", -1))


def console_tail(api: Api, instance: str, lines: int = LOG_LINES) -> str:
    """The end of the instance's console log (what systemd printed), or why it cannot be read; stripped
    of terminal control sequences (the guest wrote it)."""
    from ws.terminal import printable

    from ws_plugin_incus.errors import IncusError

    try:
        text = api.raw("get", f"instances/{instance}/console", f"reading {instance}'s console", is_api=False).text
    except IncusError as exc:
        return f"(console log unavailable: {exc})"
    tail = [printable(line) for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(tail) or "(console log is empty)"


def _until(check, deadline: float) -> None:
    while not check():
        if time.monotonic() >= deadline:
            raise TimeoutError
        time.sleep(POLL)
