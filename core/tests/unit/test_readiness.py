"""wait_for_ssh against a real local TCP server: a banner is ready, a silent listener is not."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from ws.errors import WsError
from ws.readiness import wait_for_ssh


@contextlib.contextmanager
def _server(banner: bytes | None) -> Iterator[int]:
    """A local listener that sends ``banner`` to every connection (or holds it silent); yields its port.
    The serving thread is joined before the socket closes, so it never accepts on a closed socket."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                if banner is not None:
                    connection.sendall(banner)
                else:
                    stop.wait(2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_returns_once_sshd_sends_its_banner():
    with _server(b"SSH-2.0-OpenSSH_9.2\r\n") as port:
        waited = wait_for_ssh("127.0.0.1", 5, lambda: "unused", port=port)
    assert 0 <= waited < 5


def test_a_listener_without_a_banner_times_out_with_the_console_lines():
    expected = "did not answer on 127.0.0.1:[0-9]+ within 1 s; last console lines:\nboot stuck here"
    with _server(None) as port, pytest.raises(WsError, match=expected):
        wait_for_ssh("127.0.0.1", 1, lambda: "boot stuck here", port=port)


def test_an_instance_that_stopped_fails_at_once():
    with pytest.raises(WsError, match="the guest stopped before sshd answered; last console lines:\nkernel panic"):
        wait_for_ssh("127.0.0.1", 60, lambda: "kernel panic", port=1, alive=lambda: False)


def test_a_late_sshd_is_seen_within_a_poll_interval():
    """Refused until sshd listens, then the banner (sent in two parts) is seen at once, not a second later."""
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # the port is free: connections are refused until the late server binds it
    ready_at: list[float] = []

    def late_server():
        time.sleep(0.3)
        with socket.create_server(("127.0.0.1", port)) as listener:
            ready_at.append(time.monotonic())
            connection, _ = listener.accept()
            with connection:
                connection.sendall(b"SS")
                time.sleep(0.05)
                connection.sendall(b"H-2.0-OpenSSH_9.2\r\n")
                time.sleep(0.2)

    thread = threading.Thread(target=late_server, daemon=True)
    thread.start()
    wait_for_ssh("127.0.0.1", 5, port=port)
    assert time.monotonic() - ready_at[0] < 0.5
    thread.join()


def test_a_wrong_greeting_is_not_ready():
    with _server(b"HTTP/1.1 400 Bad Request\r\n") as port, pytest.raises(WsError, match="did not answer"):
        wait_for_ssh("127.0.0.1", 0.5, port=port)


def test_a_slow_banner_is_waited_for_on_one_connection():
    """sshd in a TCG guest accepts, then takes seconds to send its banner: the first connection is kept past the
    connect timeout and no more pile up behind it (each would cost the guest a fork)."""
    connections: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.1)
        port = listener.getsockname()[1]
        stop = threading.Event()

        def slow_sshd():
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    connections.append(listener.accept()[0])
                    if len(connections) == 1:
                        threading.Timer(2.5, connections[0].sendall, [b"SSH-2.0-OpenSSH_9.2\r\n"]).start()

        thread = threading.Thread(target=slow_sshd, daemon=True)
        thread.start()
        try:
            waited = wait_for_ssh("127.0.0.1", 10, lambda: "unused", port=port)
        finally:
            stop.set()
            thread.join()
            for connection in connections:
                connection.close()
    assert 2.4 < waited < 5
    assert len(connections) == 1


def test_attempts_still_connecting_are_given_up_once_one_connects():
    """A guest without its address yet loses the SYNs of every attempt; once it answers, their retransmissions
    would each connect and cost sshd a child (past MaxStartups under load). Here the listener's full accept
    queue loses the SYNs for 0.5 s, then sshd accepts and sends its banner a second later (after the
    retransmissions): one connection reaches it."""
    accepted: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port = listener.getsockname()[1]
        fillers = [socket.create_connection(("127.0.0.1", port), timeout=5)]  # backlog 0: the queue is full
        stop = threading.Event()

        def slow_sshd():
            time.sleep(0.5)
            listener.settimeout(0.1)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    connection = listener.accept()[0]
                    accepted.append(connection)
                    threading.Timer(1.0, connection.sendall, [b"SSH-2.0-OpenSSH_9.2\r\n"]).start()

        thread = threading.Thread(target=slow_sshd, daemon=True)
        thread.start()
        try:
            wait_for_ssh("127.0.0.1", 10, port=port)
            time.sleep(1.2)  # the retransmissions of any attempt left would arrive by now
        finally:
            stop.set()
            thread.join()
            for connection in [*accepted, *fillers]:
                connection.close()
    assert len(accepted) - len(fillers) == 1, len(accepted)
