"""A cgroup of its own per detached service, in the hierarchies that track processes (cgroup2, name=systemd).

Without a service manager every detached service would share the cgroup of whoever started it. Programs that
manage their own subtree (systemd-nspawn creates ``payload``/``supervisor`` below its cgroup and hands it to
the container's root) then collide with each other. A cgroup of its own also lets ``stop`` kill what a service
left behind (``cgroup.kill``), such as a container whose nspawn was killed.

Layout: ``<hierarchy mount>/ws.supervise/<name>/`` in every cgroup2 mount and the v1 ``name=systemd``
hierarchy that are writable.

Resource limits (a service's ``cpus`` and ``memory_mib``, which systemd applies where it runs the host) are
written here for the detached supervisor, each in the first hierarchy that has its controller: cgroup2
(``cpu.max``, ``memory.max``; the controller is enabled in the ``subtree_control`` of the mount's root and of
``ws.supervise``, so only ws's own cgroups get it below the root) or else a writable cgroup v1 hierarchy of
that controller, as on hybrid hosts (``cpu.cfs_quota_us``, ``memory.limit_in_bytes``, in a
``ws.supervise/<name>`` folder there too). The service joins every folder before it execs, so everything
it starts (nspawn's guest included) is counted against the limits.

A process started later from outside the service (``ws exec`` entering a container) inherits the cgroups of
whoever started it, not the service's: :func:`of_process` finds the cgroups of one of the service's processes
and :func:`join` moves the new process there before it execs, so it is counted and limited like them.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

PARENT = "ws.supervise"
CPU_PERIOD = 100_000
"""Microseconds; a quota of ``cpus * CPU_PERIOD`` per period is ``cpus`` cores' worth of time."""


@dataclass(frozen=True)
class Limit:
    """How one limit is applied: the controller's folder for the service, and the files to write there."""

    controller: str  # "cpu" or "memory"
    hierarchy: str  # "cgroup2" or "cgroup v1"
    folder: Path
    files: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.files) + f" ({self.hierarchy})"


def mounts() -> list[tuple[str, set[str], Path]]:
    """Read-write cgroup mounts: (``cgroup2`` or ``cgroup``, the v1 mount's controllers and name, mount point)."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        before, _, after = line.partition(" - ")
        fields, fs = before.split(), after.split()
        if len(fs) < 3 or "rw" not in fields[5].split(",") or fs[0] not in ("cgroup2", "cgroup"):
            continue
        point = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
        found.append((fs[0], set(fs[2].split(",")) if fs[0] == "cgroup" else set(), point))
    return found


def hierarchies() -> list[Path]:
    """Mount points of the cgroup2 hierarchy and of the v1 ``name=systemd`` one, where mounted read-write."""
    return [point for fs, options, point in mounts() if fs == "cgroup2" or "name=systemd" in options]


def create(name: str, cpus: float | None = None, memory_mib: int | None = None) -> tuple[list[Path], list[str]]:
    """The service's cgroup folders, created (one per hierarchy; none where that is not possible), with the
    limits written; and what applies, one sentence per limit (a limit no hierarchy can take says so)."""
    made = []
    for mount in hierarchies():
        path = mount / PARENT / name
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        made.append(path)
    applied = []
    for limit in planned_limits(name, cpus, memory_mib):
        if isinstance(limit, str):
            applied.append(limit)
            continue
        try:
            _apply(limit)
        except OSError as error:
            applied.append(f"{limit.controller}: not applied ({error.strerror or error})")
            if limit.folder not in made:
                remove(limit.folder)
            continue
        if limit.folder not in made:
            made.append(limit.folder)
        applied.append(f"{limit.controller}: {limit.describe()}")
    return made, applied


def planned_limits(name: str, cpus: float | None, memory_mib: int | None) -> list[Limit | str]:
    """Where each asked limit would go (a sentence instead where no writable hierarchy has its controller)."""
    asked = []
    if cpus is not None:
        quota = max(1000, round(cpus * CPU_PERIOD))
        asked.append(("cpu", (("cpu.max", f"{quota} {CPU_PERIOD}"),),
                      (("cpu.cfs_period_us", str(CPU_PERIOD)), ("cpu.cfs_quota_us", str(quota)))))  # fmt: skip
    if memory_mib is not None:
        size = str(memory_mib * 2**20)
        asked.append(("memory", (("memory.max", size),), (("memory.limit_in_bytes", size),)))
    found = mounts()
    return [_plan(name, controller, v2_files, v1_files, found) for controller, v2_files, v1_files in asked]


def _plan(name: str, controller: str, v2_files: tuple, v1_files: tuple, found: list) -> Limit | str:
    for fs, _options, point in found:
        if fs == "cgroup2" and controller in _words(point / "cgroup.controllers"):
            return Limit(controller, "cgroup2", point / PARENT / name, v2_files)
    for fs, options, point in found:
        if fs == "cgroup" and controller in options:
            return Limit(controller, "cgroup v1", point / PARENT / name, v1_files)
    return f"{controller}: not applied (no writable cgroup hierarchy has the {controller} controller)"


def _apply(limit: Limit) -> None:
    if limit.hierarchy == "cgroup2":
        root = limit.folder.parent.parent
        for folder in (root, root / PARENT):  # the controller must be enabled on every level above the service
            folder.mkdir(exist_ok=True)
            if limit.controller not in _words(folder / "cgroup.subtree_control"):
                (folder / "cgroup.subtree_control").write_text(f"+{limit.controller}")
    limit.folder.mkdir(parents=True, exist_ok=True)
    for file, value in limit.files:
        (limit.folder / file).write_text(value)


def of_process(pid: int) -> list[Path]:
    """The folders of ``pid``'s cgroups in every read-write hierarchy mounted here (cgroup2 and each v1 one).

    Raises OSError when the process is gone. ``/proc/PID/cgroup`` and the mounts are both seen from this
    process's cgroup namespace, so the paths join.
    """
    return folders_of(Path(f"/proc/{pid}/cgroup").read_text())


def folders_of(membership: str) -> list[Path]:
    """The folders named by the lines of a ``/proc/PID/cgroup`` text, in the hierarchies mounted read-write."""
    found = mounts()
    folders = []
    for line in membership.splitlines():
        number, controllers, path = line.split(":", 2)
        names = set(controllers.split(",")) - {""}
        for fs, options, point in found:
            if (fs == "cgroup2" and number == "0") or (fs == "cgroup" and names and names <= options):
                folders.append(point / path.lstrip("/"))
                break
    return folders


def join(folders: list[Path]) -> None:
    """Move the calling process into every folder of ``folders`` (one per hierarchy, from :func:`of_process`).

    Meant for between fork and exec (``subprocess``'s ``preexec_fn``): it imports nothing and takes no lock.
    Raises OSError if a folder refuses the process.
    """
    for folder in folders:
        fd = os.open(os.path.join(folder, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def _words(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


def has_processes(path: Path) -> bool:
    return any(_procs(folder) for folder in _walk(path))


def kill(path: Path, timeout: float = 10.0) -> None:
    """SIGKILL every process in the cgroup and below (``cgroup.kill`` on cgroup2, else one by one)."""
    kill_file = path / "cgroup.kill"
    if kill_file.exists():
        with contextlib.suppress(OSError):
            kill_file.write_text("1")
    else:
        for folder in _walk(path):
            for pid in _procs(folder):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
    deadline = time.monotonic() + timeout
    while has_processes(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def remove(path: Path) -> None:
    """Remove the cgroup and the ones the service made below it (deepest first); busy ones stay."""
    for folder in reversed(_walk(path)):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _walk(path: Path) -> list[Path]:
    """``path`` and every cgroup below it, parents before children."""
    if not path.is_dir():
        return []
    folders = [path]
    for folder in folders:
        with contextlib.suppress(OSError):
            folders.extend(entry for entry in folder.iterdir() if entry.is_dir())
    return folders


def _procs(folder: Path) -> list[int]:
    try:
        return [int(pid) for pid in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []
