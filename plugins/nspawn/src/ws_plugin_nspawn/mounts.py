"""The container's root file system mounts: an idmapped read-only view of the shared base, an overlay on it.

Idmapped mounts use ``open_tree``/``mount_setattr``/``move_mount``.

The base tree is unpacked once with the image's own owners (root is 0). A container whose user namespace maps
guest id 0 to host id ``shift`` needs the tree owned by ``shift``; an idmapped mount shows the same files
shifted, without copying or chowning anything, so every workspace gets its own range over one base. The
overlay root file system stacks a per-boot upper directory on that mount (overlayfs accepts idmapped lower
layers since Linux 5.19; an overlay itself cannot be idmapped, which is why nspawn's own
``--private-users-ownership=map`` does not work on it).

Python has no wrappers for these system calls; their numbers are the same on every architecture (new system
calls since Linux 5.1 share one table).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_IDMAP = 0x100000


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def mount_shifted(source: Path, target: Path, shift: int, count: int) -> None:
    """Mount ``source`` read-only at ``target`` with ids 0..count-1 shown as shift..shift+count-1."""
    userns = _user_namespace(shift, count)
    try:
        tree = _syscall(SYS_OPEN_TREE, AT_FDCWD, os.fsencode(source), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
        try:
            attr = _MountAttr(MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY, 0, 0, userns)
            _syscall(SYS_MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr))
            _syscall(SYS_MOVE_MOUNT, tree, b"", AT_FDCWD, os.fsencode(target), MOVE_MOUNT_F_EMPTY_PATH)
        finally:
            os.close(tree)
    finally:
        os.close(userns)


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    for path in (lower, upper, work):
        if "," in str(path) or ":" in str(path):
            raise OSError(f"{path}: overlayfs cannot take a path with ',' or ':'")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"ws-nspawn", os.fsencode(target), b"overlay", 0, options.encode()) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mounting the overlay at {target}: {os.strerror(errno)}")


def supported(probe_dir: Path) -> str | None:
    """None if an idmapped mount of ``probe_dir`` works here, else why not (for ws doctor and errors)."""
    target = probe_dir.with_name(f".{probe_dir.name}.idmap-probe-{os.getpid()}")
    target.mkdir(exist_ok=True)
    try:
        mount_shifted(probe_dir, target, 0x70000000, 65536)
    except OSError as error:
        return f"idmapped mount of {probe_dir} failed: {error.strerror or error}"
    else:
        subprocess.run(["umount", str(target)], capture_output=True, check=False)
    finally:
        target.rmdir()
    return None


def _user_namespace(shift: int, count: int) -> int:
    """An fd of a user namespace mapping 0..count-1 to shift..: the mapping an idmapped mount copies.

    A short-lived ``unshare --user`` child creates it; root writes the child's maps and keeps the fd (the
    namespace lives as long as the fd, the child is not needed after that).
    """
    child = subprocess.Popen(["unshare", "--user", "--", "sh", "-c", "read _"], stdin=subprocess.PIPE)
    try:
        ns_link = f"/proc/{child.pid}/ns/user"
        own = os.readlink("/proc/self/ns/user")
        while os.readlink(ns_link) == own:  # until the child has unshared
            if child.poll() is not None:
                raise OSError(f"unshare --user exited with {child.returncode}")
            os.sched_yield()
        for name in ("uid_map", "gid_map"):
            Path(f"/proc/{child.pid}/{name}").write_text(f"0 {shift} {count}\n")
        return os.open(ns_link, os.O_RDONLY | os.O_CLOEXEC)
    finally:
        child.stdin.close()
        child.wait()


def _syscall(number: int, *args) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(number, *args)
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result
