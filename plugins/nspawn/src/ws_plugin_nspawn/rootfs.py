"""Root file systems: one read-only base per image content hash, one overlay per boot.

Layout under ``<state_dir>/nspawn/``::

    bases/IMAGE-HASH/        ws's image unpacked once (owners as in the image: root is 0), shared by all
    bases/.tmp-HASH-PID/     an unpack in progress (a killed one is removed by the next)
    machines/NAME/           one boot of workspace NAME, removed at stop:
        record.json          the boot's id range and base (see :mod:`ws_plugin_nspawn.backend`)
        lower/               the base, idmapped to the boot's id range, read-only
        upper/, work/        the overlay's writable layer (owned by the range's root)
        root/                the overlay: the container's /
    logs/NAME.log            the console of the last boot

Eight workspaces cost one base plus eight upper directories (what the guests wrote since boot).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from ws.errors import WsError
from ws.mounts import mounts_below, remove_tree

from ws_plugin_nspawn import mounts

ID_COUNT = 0x10000
TMP_BASE = re.compile(r"^\.tmp-([0-9a-f]+)-(\d+)$")


def nspawn_dir(state_root: Path) -> Path:
    return state_root / "nspawn"


def machine_dir(state_root: Path, name: str) -> Path:
    return nspawn_dir(state_root) / "machines" / name


def console_log(state_root: Path, name: str) -> Path:
    return nspawn_dir(state_root) / "logs" / f"{name}.log"


def ensure_base(state_root: Path, built, lock, progress=lambda _message: None) -> Path:
    """The unpacked base of ``built`` (core's ``PreparedImage``), unpacking it under ``lock`` if missing.

    The unpack happens in a temporary folder renamed into place when complete, so a base folder is whole.
    """
    bases = nspawn_dir(state_root) / "bases"
    base = bases / f"{built.name}-{built.hash}"
    if base.is_dir():
        return base
    with lock:
        if base.is_dir():
            return base
        bases.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_unpacks(bases)
        progress(f"unpacking image {built.name} ({built.hash}) for nspawn")
        tmp = bases / f".tmp-{built.hash}-{os.getpid()}"
        tmp.mkdir(mode=0o755)
        unpack = subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(built.rootfs_tar), "-C", str(tmp)],
            capture_output=True,
            text=True,
            check=False,
        )
        if unpack.returncode != 0:
            remove_tree(tmp)
            raise WsError(f"cannot unpack {built.rootfs_tar}: {unpack.stderr.strip()}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, base)
    return base


def remove_unused_bases(state_root: Path, name: str, keep: set[Path]) -> list[Path]:
    """Bases of image ``name`` not in ``keep`` (those in use by a machine); what was removed."""
    bases = nspawn_dir(state_root) / "bases"
    removed = []
    for base in sorted(bases.glob(f"{name}-*")) if bases.is_dir() else ():
        if base not in keep and re.fullmatch(rf"{re.escape(name)}-[0-9a-f]+", base.name):
            remove_tree(base)
            removed.append(base)
    return removed


def mount_root(folder: Path, base: Path, shift: int) -> Path:
    """Mount the boot's root file system in ``folder`` (see the layout); its path."""
    lower, upper, work, root = (folder / part for part in ("lower", "upper", "work", "root"))
    for path in (lower, root):
        path.mkdir(mode=0o755, exist_ok=True)
    for path in (upper, work):
        path.mkdir(mode=0o755, exist_ok=True)
        os.chown(path, shift, shift)
    try:
        if not _is_mount_point(lower):
            mounts.mount_shifted(base, lower, shift, ID_COUNT)
        if not _is_mount_point(root):
            mounts.mount_overlay(lower, upper, work, root)
    except OSError as error:
        raise WsError(f"cannot mount the container's root file system in {folder}: {error}") from None
    return root


def remove_machine_dir(folder: Path) -> bool:
    """Unmount and remove one boot's folder; True if there was one."""
    if not folder.exists():
        return False
    remove_tree(folder)
    return True


def _is_mount_point(path: Path) -> bool:
    return str(path.resolve()) in mounts_below(path.parent)


def _remove_abandoned_unpacks(bases: Path) -> None:
    for path in bases.iterdir():
        match = TMP_BASE.match(path.name)
        if match and not Path(f"/proc/{match.group(2)}").exists():
            remove_tree(path)
