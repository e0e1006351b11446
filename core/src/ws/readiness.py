"""When is a started workspace usable: its sshd answers on the workspace address.

Shared by every backend whose host sits on the workspace's network (nspawn, microVM, a local Incus): the
host connects to ``ADDRESS:22`` and waits for the SSH banner (a listening socket whose sshd has not started
answering is not ready). A timeout raises a sentence that includes what the backend knows about the failure
(the last console lines).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from ws.errors import WsError

POLL = 0.1
CONNECT_TIMEOUT = 1.0


def wait_for_ssh(
    address: str,
    timeout: float,
    describe_failure: Callable[[], str],
    *,
    port: int = 22,
    gone: Callable[[], bool] | None = None,
) -> float:
    """Return the seconds waited once sshd at ``address`` sends its banner.

    ``describe_failure()`` is called only on failure; its text (the last console lines) ends the error.
    ``gone()`` says the instance stopped meanwhile, which fails at once instead of at the timeout.
    """
    began = time.monotonic()
    deadline = began + timeout
    while True:
        if _banner(address, port):
            return time.monotonic() - began
        if gone is not None and gone():
            raise WsError(
                f"the workspace at {address} stopped while booting; last console lines:\n{describe_failure()}"
            )
        if time.monotonic() >= deadline:
            raise WsError(
                f"sshd at {address}:{port} did not answer within {timeout:.0f} s; last console lines:\n"
                f"{describe_failure()}"
            )
        time.sleep(POLL)


def _banner(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT) as connection:
            connection.settimeout(CONNECT_TIMEOUT)
            return connection.recv(4).startswith(b"SSH-")
    except OSError:
        return False
