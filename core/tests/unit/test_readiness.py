"""wait_for_ssh against a real local TCP server: a banner is ready, a silent listener is not."""

from __future__ import annotations

import socket
import threading

import pytest
from ws.errors import WsError
from ws.readiness import wait_for_ssh


def _server(banner: bytes | None):
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.1)
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
    return listener, stop


def test_returns_once_sshd_sends_its_banner():
    listener, stop = _server(b"SSH-2.0-OpenSSH_9.2\r\n")
    try:
        waited = wait_for_ssh("127.0.0.1", 5, lambda: "unused", port=listener.getsockname()[1])
        assert 0 <= waited < 5
    finally:
        stop.set()
        listener.close()


def test_a_listener_without_a_banner_times_out_with_the_console_lines():
    listener, stop = _server(None)
    try:
        expected = "did not answer on 127.0.0.1:[0-9]+ within 1 s; last console lines:\nboot stuck here"
        with pytest.raises(WsError, match=expected):
            wait_for_ssh("127.0.0.1", 1, lambda: "boot stuck here", port=listener.getsockname()[1])
    finally:
        stop.set()
        listener.close()


def test_an_instance_that_stopped_fails_at_once():
    with pytest.raises(WsError, match="the guest stopped before sshd answered; last console lines:\nkernel panic"):
        wait_for_ssh("127.0.0.1", 60, lambda: "kernel panic", port=1, alive=lambda: False)
