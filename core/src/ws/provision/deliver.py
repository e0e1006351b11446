"""Putting a bundle's files into a guest: into a root file system on disk (nspawn, microVM) or as
``(path, bytes, mode, uid, gid)`` tuples for an API push (Incus).

Owners are names or numeric strings; names are resolved against the *guest's* passwd/group, never the
host's. Writing into a root file system never follows the guest's symlinks out of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ws.errors import WsError
from ws.provision.bundle import Bundle

MAX_SYMLINKS = 40


@dataclass(frozen=True)
class IdMap:
    """Name -> id tables of the guest; ``root`` and numeric strings need no table."""

    users: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_text(cls, passwd: str = "", group: str = "") -> IdMap:
        return cls(_table(passwd), _table(group))

    @classmethod
    def from_rootfs(cls, rootfs: Path) -> IdMap:
        return cls.from_text(*(_read_optional(rootfs / "etc" / name) for name in ("passwd", "group")))

    def uid(self, owner: str) -> int:
        return self._lookup(owner, self.users, "user")

    def gid(self, group: str) -> int:
        return self._lookup(group, self.groups, "group")

    @staticmethod
    def _lookup(name: str, table: dict[str, int], kind: str) -> int:
        if name.isdigit():
            return int(name)
        if name == "root":
            return 0
        if name not in table:
            raise WsError(f"provisioning file owner {kind} {name!r} does not exist in the guest image")
        return table[name]


def iter_files(bundle: Bundle, ids: IdMap | None = None) -> Iterator[tuple[str, bytes, int, int, int]]:
    """``(guest path, content, mode, uid, gid)`` for every file, in bundle order."""
    ids = ids or IdMap()
    for item in bundle.files:
        yield item.path, item.content, item.mode, ids.uid(item.owner), ids.gid(item.group)


def deliver_to_rootfs(bundle: Bundle, rootfs: Path, *, chown: bool = True, id_offset: int = 0) -> None:
    """Write every file into ``rootfs`` with its mode (and owner unless ``chown`` is false, which only
    tests running without root use). Missing parent folders are created root-owned, mode 755.

    ``id_offset`` is added to every owner: a root file system used by a container whose user namespace maps
    guest id 0 to host id ``id_offset`` (nspawn's ``--private-users``) must hold the host ids."""
    rootfs = Path(rootfs).resolve()
    if not rootfs.is_dir():
        raise WsError(f"cannot provision {rootfs}: it is not a root file system folder")
    for path, content, mode, uid, gid in iter_files(bundle, IdMap.from_rootfs(rootfs)):
        parent = _resolve_dir(rootfs, Path(path).parent, id_offset if chown else None)
        name = Path(path).name
        tmp = parent / f".{name}.ws-tmp"
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, content)
            if chown:
                os.fchown(fd, uid + id_offset, gid + id_offset)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, parent / name)


def _resolve_dir(rootfs: Path, guest_dir: Path, owner: int | None = None) -> Path:
    """The host path of ``guest_dir`` with symlinks resolved as if ``rootfs`` were ``/`` (like chroot),
    creating missing folders (owned by host id ``owner`` when given, the guest's root)."""
    current = rootfs
    pending = list(guest_dir.parts[1:])
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            current = current.parent if current != rootfs else rootfs
            continue
        candidate = current / part
        if candidate.is_symlink():
            hops += 1
            if hops > MAX_SYMLINKS:
                raise WsError(f"too many symbolic links under {rootfs} resolving {guest_dir}")
            target = Path(os.readlink(candidate))
            if target.is_absolute():
                current = rootfs
                pending = list(target.parts[1:]) + pending
            else:
                pending = list(target.parts) + pending
            continue
        if not candidate.exists():
            candidate.mkdir(mode=0o755)
            os.chmod(candidate, 0o755)
            if owner is not None:
                os.chown(candidate, owner, owner)
        elif not candidate.is_dir():
            raise WsError(f"{candidate} is in the way of a provisioning file: it is not a folder")
        current = candidate
    return current


def _table(text: str) -> dict[str, int]:
    table: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            table.setdefault(fields[0], int(fields[2]))
    return table


def _read_optional(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
