"""Where ws keeps caches that only speed it up, and whether a cache file may be believed.

A cache ws reads decides what it does (the configuration snapshot names sockets, servers and folders), so
it lives where only the invoking user can write: root's in /var/cache/ws (never the ``~/.cache`` of a user
whose HOME sudo kept), anyone else's in ``$XDG_CACHE_HOME/ws`` or ``~/.cache/ws``. ``WS_CACHE_DIR``
overrides both (tests, packaging). Whatever is found there is used only if it and its folder belong to
the invoking user and nobody else can write them. os.path, not pathlib: this runs on every ``ws list``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

ROOT_CACHE = "/var/cache/ws"


def cache_dir(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    if environ.get("WS_CACHE_DIR"):
        return environ["WS_CACHE_DIR"]
    if os.geteuid() == 0:
        return ROOT_CACHE
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ws")


def private_dir(name: str, environ: Mapping[str, str] | None = None) -> str:
    """``cache_dir()/name``, created 0700 if missing (raises OSError when it cannot be)."""
    path = os.path.join(cache_dir(environ), name)
    os.makedirs(path, mode=0o700, exist_ok=True)
    if not trusted(path):
        raise PermissionError(f"{path} belongs to another user or others can write it")
    return path


def trusted(path: str) -> bool:
    """``path`` and the folder holding it belong to the invoking user, and nobody else can write them."""
    for item in (path, os.path.dirname(path)):
        try:
            info = os.stat(item)
        except OSError:
            return False
        if info.st_uid != os.geteuid() or info.st_mode & 0o022:
            return False
    return True
