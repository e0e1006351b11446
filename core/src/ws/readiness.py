"""When is a started guest usable: its sshd answers on the workspace address. Shared by every backend.

The host sits on the workspace's network, so it connects to ``address:22`` and waits for the SSH
identification line (``SSH-2.0-...``): a port that accepts but never speaks (a half-started guest, a
firewall that only completes handshakes) is not ready. On timeout the error carries what the backend
knows of the guest (the end of its console log), where systemd says what it is stuck on.

:func:`wait_for_ssh` opens a new non-blocking attempt every :data:`POLL` seconds and keeps each for up to
:data:`ATTEMPT_TIMEOUT`: a SYN sent before the guest's interface exists is lost, and a blocking connect
would only learn of it at TCP's first retransmission one second later, so the wait would end up to a
second after sshd started. Overlapping attempts notice sshd within one poll interval and still let a slow
guest (a loaded host, a TCG VM) take as long as it needs to answer one of them.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Callable

from ws.errors import WsError

POLL = 0.02
ATTEMPT_TIMEOUT = 2.0
"""How long one attempt may take to connect before it is given up."""
BANNER_TIMEOUT = 30.0
"""How long a connected attempt may wait for the banner (sshd forks for each connection: seconds in a TCG VM)."""
SSH_PORT = 22
BANNER = b"SSH-"


def sshd_answers(address: str, port: int = SSH_PORT, timeout: float = 1.0) -> bool:
    """One attempt: a TCP connection that sends an SSH identification line."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            return connection.recv(8).startswith(BANNER)
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
    with _Attempts(address, port) as attempts:
        while True:
            attempts.open()
            if attempts.banner_within(min(POLL, max(0.0, deadline - time.monotonic()))):
                return time.monotonic() - started
            if alive is not None and not alive():
                reason = "the guest stopped before sshd answered"
                break
            if time.monotonic() >= deadline:
                reason = f"sshd did not answer on {address}:{port} within {timeout:.0f} s"
                break
    detail = describe_failure() if describe_failure is not None else ""
    raise WsError(f"{reason}" + (f"; last console lines:\n{detail}" if detail else ""))


class _Attempts:
    """Non-blocking connections to ``address:port`` under way, each with its start time and what it read."""

    def __init__(self, address: str, port: int):
        # A numeric address for connect_ex: getaddrinfo would import the idna codec for nothing.
        self.target = (address, port) if _is_ipv4(address) else None
        self.address, self.port = address, port
        self.selector = selectors.DefaultSelector()

    def __enter__(self) -> _Attempts:
        return self

    def __exit__(self, *_exc: object) -> None:
        for key in list(self.selector.get_map().values()):
            self._drop(key.fileobj)
        self.selector.close()

    def open(self) -> None:
        """Start one more attempt unless one is connected and waiting for the banner; give up those that did
        not connect within :data:`ATTEMPT_TIMEOUT` or sent no banner within :data:`BANNER_TIMEOUT`.

        Once sshd accepts, more connections would only queue up behind it: on a slow guest (TCG) each costs
        sshd a fork and counts against its ``MaxStartups``, and a new one every poll kept a microVM's sshd from
        ever answering (seen: 230 connections in flight, none answered)."""
        now = time.monotonic()
        connected = False
        for key in list(self.selector.get_map().values()):
            started, read = key.data
            if now - started > (ATTEMPT_TIMEOUT if read is None else BANNER_TIMEOUT):
                self._drop(key.fileobj)
            elif read is not None:
                connected = True
        if connected:
            return
        try:
            if self.target is None:
                info = socket.getaddrinfo(self.address, self.port, type=socket.SOCK_STREAM)[0]
                family, target = info[0], info[4]
            else:
                family, target = socket.AF_INET, self.target
            connection = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            return
        connection.setblocking(False)
        if connection.connect_ex(target) not in (0, errno.EINPROGRESS):
            connection.close()
            return
        self.selector.register(connection, selectors.EVENT_WRITE, [now, None])

    def banner_within(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for any attempt to read an SSH identification line."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0 and self.selector.get_map():
            for key, _events in self.selector.select(left):
                connection, data = key.fileobj, key.data
                if connection.fileno() < 0:  # dropped below while this batch was being read
                    continue
                if data[1] is None:  # connecting: writable means connected or refused
                    if connection.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        self._drop(connection)
                    else:
                        data[1] = b""
                        self.selector.modify(connection, selectors.EVENT_READ, data)
                        self._drop_connecting()
                    continue
                try:
                    chunk = connection.recv(len(BANNER) - len(data[1]))
                except OSError:
                    chunk = b""
                data[1] += chunk
                if not chunk or not BANNER.startswith(data[1]):
                    self._drop(connection)
                elif data[1] == BANNER:
                    return True
        if not self.selector.get_map():
            time.sleep(max(0.0, end - time.monotonic()))
        return False

    def _drop_connecting(self) -> None:
        """Give up the attempts still connecting once one has connected. Their SYNs were lost while the guest
        had no address yet; their retransmissions would now connect one after another and each cost sshd a
        child: seen under load, some twenty at once kept sshd past its ``MaxStartups`` for a moment after
        ``ws up``, and the user's first ssh was dropped ("Connection reset by peer")."""
        for key in list(self.selector.get_map().values()):
            if key.data[1] is None:
                self._drop(key.fileobj)

    def _drop(self, connection) -> None:
        self.selector.unregister(connection)
        connection.close()


def _is_ipv4(address: str) -> bool:
    try:
        socket.inet_aton(address)
    except OSError:
        return False
    return address.count(".") == 3
