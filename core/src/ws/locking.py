"""flock-based locks: the kernel drops them when a process dies, so a crash never leaves a stale lock.

One lock per resource, held only while needed: ``workspace-NAME`` serializes operations on one workspace,
``image-NAME`` an image build or import, ``network-NAME`` bringing a network up or down. Independent
workspaces proceed in parallel (the original serialized everything behind one global lock).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from ws.errors import WsError

LOCK_KINDS = ("workspace", "image", "network", "backend")
DEFAULT_TIMEOUT = 600.0
POLL_INTERVAL = 0.05


class LockTimeout(WsError):
    """Another ws process held the lock for longer than we were willing to wait."""


def lock_path(state_dir: Path, kind: str, name: str) -> Path:
    if kind not in LOCK_KINDS:
        raise ValueError(f"unknown lock kind {kind!r}")
    return state_dir / "locks" / f"{kind}-{name}.lock"


@contextmanager
def file_lock(path: Path, *, shared: bool = False, timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
    """Hold an flock on ``path`` (created if missing) for the ``with`` block.

    Waits up to ``timeout`` seconds, polling, so the wait is interruptible and bounded; the error names the
    lock so the user can see what is busy.
    """
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, operation)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{path.name.removesuffix('.lock')} is busy: another ws process held {path} "
                        f"for more than {timeout:.0f} s"
                    ) from None
                time.sleep(POLL_INTERVAL)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def lock(state_dir: Path, kind: str, name: str, *, timeout: float = DEFAULT_TIMEOUT) -> AbstractContextManager[None]:
    """The exclusive lock of one resource: ``with lock(state, "workspace", "dev"): ...``."""
    return file_lock(lock_path(state_dir, kind, name), timeout=timeout)
