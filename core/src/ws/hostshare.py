"""Host folders a guest can write, made useless for setuid and device tricks on the host.

Guest root writes shared folders as host root (idmapped mounts) or as the guest's own uid, so a guest can
leave a ``chmod 4755`` root-owned binary or a device node there. ws bind-mounts each guest-writable folder
onto itself with ``nosuid,nodev`` before the guest gets it: whoever runs such a file on the host through
that path gets no privileges from it, and the guest sees the same flags. The workspace's own folder is
also closed to users other than root and the login user's group (see :mod:`ws.state`).

Backends call :func:`protect` before handing the folders to the guest (every backend, since the hole is
the host's); :func:`release` undoes it for ``destroy --purge``. The mounts are kernel state: after a
reboot the next ``ws up`` makes them again.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from ws.errors import WsError
from ws.types import Workspace

MOUNTINFO = Path("/proc/self/mountinfo")
_MS_NOSUID, _MS_NODEV, _MS_REMOUNT, _MS_BIND = 0x2, 0x4, 0x20, 0x1000
_MNT_DETACH = 0x2


def guest_writable(workspace: Workspace) -> list[Path]:
    """The host side of every folder the guest may write: work, agent state, read-write ``mounts``."""
    paths = workspace.paths
    return [paths.work, paths.agent, *(Path(m.host_path) for m in workspace.mounts if not m.read_only)]


def protect(workspace: Workspace) -> list[str]:
    """Make each guest-writable folder a ``nosuid,nodev`` mount point of itself; returns what changed."""
    changes = []
    for folder in guest_writable(workspace):
        if not folder.is_dir():
            raise WsError(f"{folder} (shared with workspace {workspace.name}) is not a folder")
        options = mount_options(folder)
        if options is not None and {"nosuid", "nodev"} <= options:
            continue
        if options is None:
            _mount(str(folder), str(folder), _MS_BIND)
        _mount(None, str(folder), _MS_REMOUNT | _MS_BIND | _MS_NOSUID | _MS_NODEV | _readonly_flag(options))
        changes.append(f"mounted {folder} nosuid,nodev")
    return changes


def release(workspace: Workspace) -> None:
    """Undo :func:`protect` (lazily, so a shell sitting in the folder does not block ``destroy --purge``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for folder in guest_writable(workspace):
        while mount_options(folder) is not None:
            if libc.umount2(os.fsencode(folder), _MNT_DETACH) != 0:
                raise WsError(f"cannot unmount {folder}: {os.strerror(ctypes.get_errno())}")


def mount_options(folder: Path) -> set[str] | None:
    """The per-mount options of the topmost mount exactly at ``folder``, or None when it is no mount point."""
    target = os.path.realpath(folder)
    found = None
    for line in MOUNTINFO.read_text().splitlines():
        fields = line.split()
        if _unescape(fields[4]) == target:
            found = set(fields[5].split(","))
    return found


def _readonly_flag(options: set[str] | None) -> int:
    return 0x1 if options is not None and "ro" in options else 0


def _mount(source: str | None, target: str, flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    encoded = os.fsencode(source) if source is not None else None
    if libc.mount(encoded, os.fsencode(target), None, flags, None) != 0:
        raise WsError(f"cannot mount {target} nosuid,nodev: {os.strerror(ctypes.get_errno())} (ws must run as root)")


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    return field.encode().decode("unicode_escape") if "\\" in field else field
