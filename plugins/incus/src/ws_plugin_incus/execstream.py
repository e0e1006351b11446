"""Run a command in an instance and stream its output as it comes (Incus exec API with websockets).

pylxd's ``Instance.execute`` loses the exit status when closing its websockets fails, which over TLS it
does often (the server has already closed them: ``SSLEOFError`` instead of the ``BrokenPipeError`` it
expects), and its manager thread dies noisily at exit. This is the same protocol with one plain thread per
output stream (ws4py's base client, no manager): stdin is closed at once (EOF), stdout and stderr are
written through as bytes arrive, and the exit status comes from the finished operation.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ws_plugin_incus.client import Api

Sink = Callable[[bytes], None]
DRAIN_TIMEOUT = 10.0


def run(api: Api, instance: str, command: list[str], *, env: dict[str, str], cwd: str, out: Sink, err: Sink) -> int:
    from ws4py.client import WebSocketBaseClient

    class Stream(WebSocketBaseClient):
        def __init__(self, url: str, sink: Sink | None, **kwargs):
            super().__init__(url, **kwargs)
            self.sink = sink

        def received_message(self, message) -> None:
            if self.sink is not None and message.data:
                self.sink(bytes(message.data))

    doing = f"running {command[0]} in {instance}"
    body = {"command": command, "environment": env, "cwd": cwd, "wait-for-websocket": True, "interactive": False}
    answer = api.raw("post", f"instances/{instance}/exec", doing, json=body).json()
    operation = answer["operation"].split("?")[0]
    secrets = answer["metadata"]["metadata"]["fds"]
    streams, readers = [], []
    for fd, sink in (("0", None), ("1", out), ("2", err)):
        stream = Stream(api.client.websocket_url, sink, ssl_options=api.client.ssl_options, exclude_headers=["origin"])
        stream.resource = f"{operation}/websocket?secret={secrets[fd]}"
        stream.connect()
        streams.append(stream)
        if sink is not None:
            readers.append(threading.Thread(target=stream.run, name=f"incus-exec-{fd}", daemon=True))
            readers[-1].start()
    _close(streams[0])  # no input: the command sees EOF
    try:
        result = api.wait(operation, doing)
    finally:
        for reader in readers:
            reader.join(DRAIN_TIMEOUT)  # the server closes the streams once everything is sent
        for stream in streams[1:]:
            _close(stream)
    return int(result.get("return", -1))


def _close(stream) -> None:
    with contextlib.suppress(OSError, RuntimeError):
        stream.close()
