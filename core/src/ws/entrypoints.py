"""Entry points of the ``ws`` group, cached so the CLI starts without importing importlib.metadata.

importlib.metadata and what it pulls in (email, zipfile, csv) cost about 20 ms, a third of ``ws --help``.
The scan's result is cached per interpreter, keyed by the modification times of the ``sys.path``
folders: installing, upgrading or removing a distribution changes its site-packages folder, which
invalidates the cache. A missing or unwritable cache only costs the scan.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import zlib
from dataclasses import asdict, dataclass
from typing import Any

from ws.cache import cache_dir, trusted

CACHE_VERSION = 1


@dataclass(frozen=True)
class EntryPointRecord:
    name: str
    value: str
    """``module`` or ``module:attribute``, as in the distribution's entry_points.txt."""
    distribution: str
    version: str

    def load(self) -> Any:
        module_name, _, attribute = self.value.partition(":")
        target: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attribute.strip().split(".")):
            target = getattr(target, part)
        return target


def entry_points(group: str) -> list[EntryPointRecord]:
    """The group's entry points sorted by name (from the cache when the installed set is unchanged)."""
    key = _installation_key()
    cache = _cache_file(group)
    try:
        with open(cache) as file:
            data = json.load(file)
        if data.get("version") == CACHE_VERSION and data.get("key") == key and trusted(cache):
            return [EntryPointRecord(**record) for record in data["entry_points"]]
    except (OSError, ValueError, TypeError, KeyError):
        pass
    records = _scan(group)
    _write_cache(cache, {"version": CACHE_VERSION, "key": key, "entry_points": [asdict(r) for r in records]})
    return records


def _scan(group: str) -> list[EntryPointRecord]:
    from importlib.metadata import entry_points as metadata_entry_points

    records = {}
    for entry_point in metadata_entry_points(group=group):
        dist = entry_point.dist
        records.setdefault(
            entry_point.name,
            EntryPointRecord(
                name=entry_point.name,
                value=entry_point.value,
                distribution=dist.metadata["Name"] if dist else "?",
                version=dist.version if dist else "?",
            ),
        )
    return [records[name] for name in sorted(records)]


def _installation_key() -> list[Any]:
    key: list[Any] = [sys.executable, sys.version]
    for entry in sys.path:
        try:
            key.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            key.append([entry, None])
    return key


def _cache_file(group: str) -> str:
    """In :func:`ws.cache.cache_dir`: root's is never the invoking user's ``~/.cache`` (sudo may keep HOME),
    which that user could fill with entry points naming any module for root to import."""
    tag = f"{sys.implementation.cache_tag}-{zlib.crc32(sys.prefix.encode()):08x}"
    return os.path.join(cache_dir(), f"entry-points-{group}-{tag}.json")


def _write_cache(cache: str, data: dict) -> None:
    try:
        import tempfile

        os.makedirs(os.path.dirname(cache), mode=0o755, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(cache), prefix=".entry-points.")
        with os.fdopen(fd, "w") as file:
            json.dump(data, file)
        os.chmod(tmp, 0o644)
        os.replace(tmp, cache)
    except OSError:
        pass  # read-only home or similar: ws works, it only scans again next time
