"""What /proc says about a process: alive or not, and its start time, which tells a process from a reused pid."""

from __future__ import annotations

import contextlib
import os
import select
import signal


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat); None if it is gone.

    A zombie counts as gone: it has exited and only waits to be reaped.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces or parentheses.
    fields = stat[stat.rindex(b")") + 2 :].split()
    state, ticks = fields[0], int(fields[19])
    return None if state in (b"Z", b"X") else ticks


def is_same_process(pid: int, ticks: int) -> bool:
    return start_ticks(pid) == ticks


def open_pidfd(pid: int, ticks: int) -> int | None:
    """A pidfd for the process if it is still the one that started at ``ticks``, else None.

    The start time is checked after the pidfd is open, so the fd cannot refer to a process that reused the pid.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    if not is_same_process(pid, ticks):
        os.close(fd)
        return None
    return fd


def signal_pidfd(fd: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(fd, signum)


def wait_pidfd(fd: int, timeout: float) -> bool:
    """True once the process has exited (it may remain a zombie), False if it still runs after ``timeout``."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout * 1000))))
