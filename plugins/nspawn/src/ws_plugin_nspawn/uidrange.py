"""A user-namespace id range per running container that collides with nothing else on the host.

Ranges are 65536 ids at ``0x70000000 + k * 65536``, k < 4094 (up to the start of systemd's "foreign" range at
0x7FFE0000). That region is above what systemd-nspawn's ``--private-users=pick`` uses (0x00080000-0x6FFFFFFF)
and above Incus's map, which comes from root's ``/etc/subuid``/``/etc/subgid`` entries (1000000 + 10^9 by
default); every subuid/subgid entry is skipped anyway, and so is any range a running process already maps
(``/proc/*/uid_map``), whoever made it.

Claims are files ``/run/ws-nspawn/ranges/<k>`` naming the claiming workspace's record file, made under one
host-wide lock, so ws processes with different state directories share the one registry. The record must exist
before the claim; a claim whose record is gone or names another range is stale (the workspace was torn down
without releasing it) and is taken over. /run is emptied at boot.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

FIRST = 0x70000000
SIZE = 0x10000
SLOTS = (0x7FFE0000 - FIRST) // SIZE
REGISTRY = Path("/run/ws-nspawn/ranges")


class NoFreeRange(Exception):
    pass


def claim(record_file: Path, registry: Path = REGISTRY) -> int:
    """Claim a free range for the workspace whose record is ``record_file`` (host-unique); its first id.

    The same record gets the same range while its claim lasts (a re-run after a crash converges).
    """
    registry.mkdir(parents=True, exist_ok=True)
    with _locked(registry):
        start = int.from_bytes(hashlib.sha256(str(record_file).encode()).digest()[:4], "big") % SLOTS
        used = _mapped_by_processes() + _subordinate_ranges()
        claimed = _live_claims(registry)
        for offset in range(SLOTS):
            slot = (start + offset) % SLOTS
            if claimed.get(slot) == str(record_file):
                return FIRST + slot * SIZE
        for offset in range(SLOTS):
            slot = (start + offset) % SLOTS
            first = FIRST + slot * SIZE
            if slot in claimed or any(first < end and begin < first + SIZE for begin, end in used):
                continue
            _write(registry / str(slot), str(record_file))
            return first
    raise NoFreeRange(f"no free id range of {SIZE} ids between {FIRST:#x} and {FIRST + SLOTS * SIZE:#x}")


def release(first: int, record_file: Path, registry: Path = REGISTRY) -> None:
    """Give the range back if ``record_file`` still holds the claim."""
    claim_file = registry / str((first - FIRST) // SIZE)
    with _locked(registry):
        try:
            if claim_file.read_text() == str(record_file):
                claim_file.unlink()
        except FileNotFoundError:
            pass


def _live_claims(registry: Path) -> dict[int, str]:
    """Claims whose record exists and names the slot's range or none yet (others are stale and dropped)."""
    import json

    claims = {}
    for path in registry.iterdir():
        if not path.name.isdigit():
            continue
        owner_record = path.read_text()
        try:
            first = json.loads(Path(owner_record).read_text()).get("uid_shift", "unset")
        except (OSError, ValueError):
            first = None
        if first in ("unset", FIRST + int(path.name) * SIZE):
            claims[int(path.name)] = owner_record
        else:
            path.unlink(missing_ok=True)
    return claims


def _mapped_by_processes() -> list[tuple[int, int]]:
    """Host id ranges that running processes' user namespaces map (outside the initial namespace)."""
    ranges = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "uid_map").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            _inside, outside, count = (int(field) for field in line.split())
            if count < 0xFFFFFFFF:
                ranges.add((outside, outside + count))
    return sorted(ranges)


def _subordinate_ranges() -> list[tuple[int, int]]:
    ranges = []
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.strip().split(":")
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                ranges.append((int(fields[1]), int(fields[1]) + int(fields[2])))
    return ranges


class _locked:
    def __init__(self, registry: Path):
        self.path = registry / ".lock"

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        os.close(self.fd)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
