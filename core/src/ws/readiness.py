"""When is a started guest usable: its sshd answers on the workspace address. Shared by every backend.

The host sits on the workspace's network, so it connects to ``address:22`` and waits for the SSH
identification line (``SSH-2.0-...``): a port that accepts but never speaks (a half-started guest, a
firewall that only completes handshakes) is not ready. On timeout the error carries what the backend
knows of the guest (the end of its console log), where systemd says what it is stuck on.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from ws.errors import WsError

POLL = 0.1
SSH_PORT = 22


def sshd_answers(address: str, port: int = SSH_PORT, timeout: float = 1.0) -> bool:
    """One attempt: a TCP connection that sends an SSH identification line."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            return connection.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def wait_for_ssh(
    address: str,
    timeout: float,
    describe_failure: Callable[[], str] | None = None,
    *,
    port: int = SSH_PORT,
    alive: Callable[[], bool] | None = None,
) -> float:
    """Wait until sshd answers on ``address``; return the seconds waited.

    ``alive`` (optional) is asked between attempts: when the guest's process died there is nothing to wait
    for. The error's message ends with ``describe_failure()`` (for example the console's last lines).
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if sshd_answers(address, port, timeout=min(1.0, max(0.1, deadline - time.monotonic()))):
            return time.monotonic() - started
        if alive is not None and not alive():
            reason = "the guest stopped before sshd answered"
            break
        if time.monotonic() >= deadline:
            reason = f"sshd did not answer on {address}:{port} within {timeout:.0f} s"
            break
        time.sleep(POLL)
    detail = describe_failure() if describe_failure is not None else ""
    raise WsError(f"{reason}" + (f"; last console lines:\n{detail}" if detail else ""))
