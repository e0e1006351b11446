"""The detached supervisor's launcher: a double fork of ws's own process, without a second interpreter.

ws forks a child that starts a session of its own and forks the service, which execs its program: the
service is not a child of ``ws`` (no zombie for ``ws`` to reap, survives ``ws`` being killed) and not a
session leader (cannot grab a terminal). The middle process writes the service's record (pid and start
time) itself before it answers and exits: a ``ws`` killed meanwhile still leaves a record the next ``ws``
finds. (This used to run as ``python -I -S launch.py``; starting that interpreter cost ``ws up`` 20 to
50 ms before nspawn could start.)

Between fork and exec only system calls and plain byte handling run, nothing that imports, logs or takes a
lock another thread could hold (``ws up a b`` starts workspaces from threads); the garbage collector is
off so that no finalizer runs twice in a child.
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
from dataclasses import dataclass

from ws.supervise.procfs import start_ticks


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    """The program's absolute path first."""
    environment: dict[str, str]
    """The service's whole environment (nothing of ws's own is inherited)."""
    log_file: str
    """Appended to: the service's stdout and stderr."""
    cgroups: list[str]
    """Folders whose ``cgroup.procs`` the service joins before it execs."""
    record_file: str
    record: dict
    """Written to ``record_file`` with ``pid``, ``pgid`` and ``ticks`` added, once the exec has worked."""


class LaunchError(Exception):
    """The program could not be executed (the message says why), or the launcher itself failed."""


def launch(request: Launch) -> int:
    """Start the service detached; its pid once its record is written."""
    log_fd = os.open(request.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        answer = _fork_middle(request, log_fd)
    finally:
        os.close(log_fd)
    if not answer:
        raise LaunchError("the launcher ended without an answer")
    reply = json.loads(answer)
    if "error" in reply:
        raise LaunchError(reply["error"])
    return int(reply["pid"])


def _fork_middle(request: Launch, log_fd: int) -> bytes:
    """Fork the middle process and return what it answered (empty if it died without answering)."""
    answer_read, answer_write = os.pipe()  # close-on-exec, as every descriptor Python opens
    collecting = gc.isenabled()
    gc.disable()
    try:
        middle = os.fork()
        if middle == 0:
            try:
                os.close(answer_read)
                try:
                    answer = _middle(request, log_fd)
                except Exception as error:  # noqa: BLE001 - said to ws, which raises it there
                    answer = json.dumps({"error": f"the launcher failed: {error}"}).encode()
                os.write(answer_write, answer)
            finally:
                os._exit(0)
    finally:
        if collecting:
            gc.enable()
    os.close(answer_write)
    try:
        answer = _read_all(answer_read)
    finally:
        os.close(answer_read)
        os.waitpid(middle, 0)
    return answer


def _middle(request: Launch, log_fd: int) -> bytes:
    """In the middle process: a new session, the service forked into it, its record written; the answer."""
    os.setsid()
    null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    error_read, error_write = os.pipe()  # EOF without data: the exec worked
    pid = os.fork()
    if pid == 0:
        _service(request, null_fd, log_fd, error_write)
    os.close(error_write)
    failure = _read_all(error_read)
    if failure:
        os.waitpid(pid, 0)
        return json.dumps({"error": failure.decode(errors="replace")}).encode()
    record = dict(request.record, pid=pid, pgid=os.getpgid(pid), ticks=start_ticks(pid))
    _write_record(request.record_file, json.dumps(record).encode())
    return json.dumps({"pid": pid}).encode()


def _service(request: Launch, null_fd: int, log_fd: int, error_write: int) -> None:
    """In the service's process: its output to the log, its cgroups joined, then its program; never returns."""
    try:
        # Above 0-2 first: ws started with its standard descriptors closed gets any of these as 0, 1 or 2.
        null_fd, log_fd, error_write = (
            fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in (null_fd, log_fd, error_write)
        )
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.closerange(3, error_write)  # what ws's own parent passed on is not the service's
        os.closerange(error_write + 1, os.sysconf("SC_OPEN_MAX"))
        os.chdir("/")
        for cgroup in request.cgroups:
            procs = os.open(os.path.join(cgroup, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(procs, b"0")
            finally:
                os.close(procs)
        os.execve(request.argv[0], request.argv, request.environment)
    except OSError as error:
        where = error.filename or request.argv[0]
        os.write(error_write, f"{where}: {error.strerror or error}".encode())
    finally:
        os._exit(127)


def _write_record(path: str, data: bytes) -> None:
    """Replaced whole (a killed ws finds it); not fsynced: after a power loss the process it names is gone."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    return data
