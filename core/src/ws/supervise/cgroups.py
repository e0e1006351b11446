"""A cgroup of its own per detached service, in the hierarchies that track processes (cgroup2, name=systemd).

Without a service manager every detached service would share the cgroup of whoever started it. Programs that
manage their own subtree (systemd-nspawn creates ``payload``/``supervisor`` below its cgroup and hands it to
the container's root) then collide with each other. A cgroup of its own also lets ``stop`` kill what a service
left behind (``cgroup.kill``), such as a container whose nspawn was killed.

Layout: ``<hierarchy mount>/ws.supervise/<name>/`` in every cgroup2 mount and the v1 ``name=systemd``
hierarchy that are writable. No controllers are enabled: resource limits are systemd's job.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

PARENT = "ws.supervise"


def hierarchies() -> list[Path]:
    """Mount points of the cgroup2 hierarchy and of the v1 ``name=systemd`` one, where mounted read-write."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        before, _, after = line.partition(" - ")
        fields, fs = before.split(), after.split()
        if len(fs) < 3 or "rw" not in fields[5].split(","):
            continue
        if fs[0] == "cgroup2" or (fs[0] == "cgroup" and "name=systemd" in fs[2].split(",")):
            found.append(Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])))
    return found


def create(name: str) -> list[Path]:
    """The service's cgroup folders, created (one per hierarchy; none where that is not possible)."""
    made = []
    for mount in hierarchies():
        path = mount / PARENT / name
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        made.append(path)
    return made


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
