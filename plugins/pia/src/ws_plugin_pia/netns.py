"""Running code inside the VPN endpoint's network namespace from ws's process, which stays in the host's.

A network namespace is per thread: one worker thread enters the namespace (``setns``) and every call given
to :meth:`InNetns.call` runs there, so sockets it opens (port forwarding through the tunnel), ``/proc/sys/net``
it writes and processes it starts (``nft``, dnsmasq: a child inherits its thread's namespace) belong to the
namespace, while the caller's own sockets (the PIA API before the tunnel exists) stay in the host's.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ws.errors import WsError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def path_of(name: str) -> Path:
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return path_of(name).exists()


def _enter(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {path}")
    finally:
        os.close(fd)


class InNetns:
    """A thread living in network namespace ``name``; use as a context manager."""

    def __init__(self, name: str) -> None:
        if not exists(name):
            raise WsError(f"the VPN namespace {name} does not exist (ws network up vpn creates it)")
        self.name = name
        self._pool = ThreadPoolExecutor(max_workers=1, initializer=_enter, initargs=(path_of(name),))

    def call(self, function: Callable[[], T]) -> T:
        return self._pool.submit(function).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> InNetns:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def write_sysctl(key: str, value: str) -> None:
    """Write ``/proc/sys/<key with dots as slashes>`` (net.* keys belong to the calling thread's namespace)."""
    Path("/proc/sys", *key.split(".")).write_text(value + "\n")
