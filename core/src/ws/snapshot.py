"""A snapshot of the resolved configuration, so ``ws list``, ``ws status`` and shell completion answer
without pydantic and the resolve (which cost them most of their time).

After every successful full load the CLI writes what those commands need (the source, the state
directory and each resolved workspace with its backend options dumped to plain data) to a private cache
file (:mod:`ws.cache`). It is used only while everything the result depends on is unchanged: its key holds
the snapshot format, ws's version, the interpreter, the configuration file's name and whole *content*
(never its modification time alone), ``WS_PLUGINS`` and ``WS_DISABLE_PLUGINS``, every registered plugin
(name, distribution, version) and the size and modification time of every file of that plugin's package
and of ws's own; the address leases file, which the resolve reads from the state directory the
configuration names, is compared by content too. Anything else means a full load, which writes the
snapshot again. The key is compared as it is, not hashed: hashlib's import alone would cost more than
the comparison.

os.path, not pathlib, until a snapshot is found valid: this runs on every ``ws list``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import zlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ws import __version__, cache

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ws.config import Config
    from ws.plugins import PluginManager, Registry
    from ws.records import Workspace

FORMAT = 1
FOLDER = "config-snapshots"
MAX_AGE = 30 * 86400
"""Snapshots not written for this long are removed when another one is written."""
KEY_ENVIRONMENT = ("WS_PLUGINS", "WS_DISABLE_PLUGINS")
"""The environment variables the resolved configuration depends on besides the file's name."""


class Snapshot:
    """The resolved configuration as ``ws list``/``status`` and completion use it. (This module's classes
    are plain: creating a dataclass costs these commands half a millisecond.)"""

    def __init__(self, source: str, state_dir: str, owners: dict[str, str], records: list[dict[str, Any]]):
        self.source = source
        self.state_dir = state_dir
        self.owners = owners
        """The plugin providing each of the workspaces' types, by type name."""
        self.records = records
        """Each workspace as stored: completion needs only the names, list and status :meth:`workspaces`."""

    @property
    def names(self) -> list[str]:
        return [record["name"] for record in self.records]

    def workspaces(self) -> dict[str, Workspace]:
        """Every workspace with its backend options as plain data (see :func:`plain`)."""
        return {record["name"]: _restore(record) for record in self.records}


class Pending:
    """The key of the configuration about to be loaded, computed *before* the load: a file changed while
    it is being read then leaves a snapshot under the old key, which the next run does not match."""

    def __init__(self, slot: str, key: str, started_ns: int, environ: Mapping[str, str]):
        self.slot = slot
        self.key = key
        """Everything the resolved configuration depends on, as one string (see the module docstring)."""
        self.started_ns = started_ns
        self.environ = environ

    def save(self, config: Config, registry: Registry) -> None:
        """Write the snapshot of ``config`` (best effort: a cache that cannot be written only costs time)."""
        from pathlib import Path

        from ws.state import LEASES_FILE, atomic_write

        leases = os.path.join(str(config.core.state_dir), LEASES_FILE)
        try:
            if os.path.exists(leases) and os.stat(leases).st_mtime_ns >= self.started_ns - 1_000_000_000:
                return  # written while the resolve may have read it: which version it read is unknown
            data = {
                "key": self.key,
                "leases_file": leases,
                "leases": _file_content(leases),
                "source": config.source,
                "state_dir": str(config.core.state_dir),
                "workspaces": [_dump(config.workspaces[name]) for name in sorted(config.workspaces)],
                "owners": {w.type: registry.owner_of_type(w.type) for w in config.workspaces.values()},
            }
            folder = cache.private_dir(FOLDER, self.environ)
            _remove_old(folder)
            atomic_write(Path(folder) / self.slot, json.dumps(data, default=str).encode(), 0o600)
        except OSError:
            return


def prepare(config_file: str | None, plugins: PluginManager, environ: Mapping[str, str]) -> Pending | None:
    """The key of the configuration ``config_file`` (None: the embedded default) with the loaded plugins,
    or None when no snapshot can stand for it (an in-process plugin that is not a module, an unreadable
    file: the full load reports that)."""
    absolute = os.path.abspath(config_file) if config_file is not None else None
    packages = _plugin_packages(plugins)
    if packages is None:
        return None
    registered = [[info.name, info.distribution, info.version] for info, _plugin in plugins.registered]
    parts: list[Any] = [FORMAT, __version__, sys.executable, config_file, absolute, registered]
    parts += [[name, environ.get(name)] for name in KEY_ENVIRONMENT]
    try:
        parts += [_tree_stamp(package) for package in sorted(packages)]
        if config_file is not None:
            with open(config_file, "rb") as file:
                parts.append(file.read().decode("utf-8", "surrogateescape"))
    except OSError:  # a file removed while being read (an upgrade), an unreadable configuration
        return None
    key = json.dumps(parts)
    slot = f"{zlib.crc32(json.dumps([absolute, sys.executable]).encode()):08x}.json"
    return Pending(slot, key, time.time_ns(), environ)


def load(pending: Pending) -> Snapshot | None:
    """The snapshot stored under ``pending``'s key, if it is still valid and nobody else could write it."""
    path = os.path.join(cache.cache_dir(pending.environ), FOLDER, pending.slot)
    try:
        if not cache.trusted(path) or not cache.trusted(os.path.dirname(path)):
            return None
        with open(path, "rb") as file:
            data = json.load(file)
        if data.get("key") != pending.key or data["leases"] != _file_content(data["leases_file"]):
            return None
        return Snapshot(data["source"], data["state_dir"], data["owners"], data["workspaces"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def plain(workspace: Workspace) -> Workspace:
    """The workspace with its backend options as plain data (a pydantic model dumped in JSON mode), as
    ``ws_status_many`` receives it whether or not the configuration was loaded."""
    options = workspace.options
    if hasattr(options, "model_dump"):
        options = options.model_dump(mode="json")
    return dataclasses.replace(workspace, options=options)


def _dump(workspace: Workspace) -> dict[str, Any]:
    data = dataclasses.asdict(dataclasses.replace(workspace, options=None))
    data["options"] = plain(workspace).options
    return data


def _restore(data: dict[str, Any]) -> Workspace:
    from pathlib import Path

    from ws.records import Mount, Workspace, WorkspacePaths

    mounts = tuple(Mount(Path(m["host_path"]), m["guest_path"], m["read_only"]) for m in data["mounts"])
    paths = WorkspacePaths(**{key: Path(value) for key, value in data["paths"].items()})
    return Workspace(**{**data, "mounts": mounts, "paths": paths})


def _plugin_packages(plugins: PluginManager) -> set[str] | None:
    """The folder (or single file) of the top-level package of every registered plugin, ws's own included
    through its built-in plugins; None when a plugin's code cannot be pinned down this way."""
    packages = set()
    for info, plugin in plugins.registered:
        if info.distribution == "(in-process)" and not isinstance(plugin, ModuleType):
            return None  # an object made at run time: its answers need not follow from its code
        name = plugin.__name__ if isinstance(plugin, ModuleType) else getattr(plugin, "__module__", None)
        top = sys.modules.get((name or "").partition(".")[0])
        locations = list(getattr(top, "__path__", None) or [getattr(top, "__file__", None)])
        if not locations or None in locations:
            return None
        packages.update(locations)
    return packages


def _tree_stamp(top: str) -> str:
    """Name, size and modification time of every file under ``top`` (a folder or one file)."""
    lines: list[str] = []
    if os.path.isdir(top):
        _stamp_folder(top, lines)
    else:
        info = os.stat(top)
        lines.append(f"{top} {info.st_size} {info.st_mtime_ns}")
    return "\n".join(sorted(lines)) + "\n"


def _stamp_folder(folder: str, lines: list[str]) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    _stamp_folder(entry.path, lines)
            else:
                info = entry.stat()
                lines.append(f"{entry.path} {info.st_size} {info.st_mtime_ns}")


def _file_content(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            return file.read().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None


def _remove_old(folder: str) -> None:
    """Snapshots not written for a month (test runs leave many; a valid one is not rewritten, so a
    configuration only listed for a month costs one full load)."""
    limit = time.time() - MAX_AGE
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".json") and entry.stat().st_mtime < limit:
                os.unlink(entry.path)
