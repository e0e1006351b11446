"""An example instance on disk: ``<state_dir>/example/<instance_name>/`` holding

* ``state.json``   ``{"state": "created" | "running" | "stopped", "started_at": float | null}``
* ``events.log``   one line per lifecycle event (what ``ws logs`` prints)
* ``rootfs/``      the provisioning bundle's files, placed as a real backend places them before first boot

Only standard-library imports: this module is imported whenever the plugin is.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from ws.errors import WsError
from ws.types import ProvisionFile

STATE_FILE = "state.json"
EVENTS_FILE = "events.log"
ROOTFS = "rootfs"


def instance_dir(state_root: Path, instance_name: str) -> Path:
    return state_root / "example" / instance_name


def read_state(directory: Path) -> dict | None:
    """The recorded state, or None when the instance does not exist."""
    try:
        return json.loads((directory / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise WsError(f"{directory / STATE_FILE} is damaged ({exc}); run ws destroy to start over") from None


def write_state(directory: Path, state: str, started_at: float | None = None) -> None:
    """Replace the state file atomically, so a killed ws never leaves half a file behind."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps({"state": state, "started_at": started_at}) + "\n")
    os.replace(tmp, directory / STATE_FILE)


def log_event(directory: Path, message: str) -> None:
    with (directory / EVENTS_FILE).open("a") as log:
        log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")


def read_events(directory: Path) -> str:
    try:
        return (directory / EVENTS_FILE).read_text()
    except FileNotFoundError:
        return ""


def replace_rootfs(directory: Path, files: Iterable[ProvisionFile]) -> Path:
    """A fresh ``rootfs/`` with every file at its guest path and mode (the example is ephemeral: each
    ``ws up`` starts from nothing). Owners are not applied, so the backend works without root."""
    rootfs = directory / ROOTFS
    if rootfs.exists():
        shutil.rmtree(rootfs)
    rootfs.mkdir(parents=True)
    for item in files:
        parts = Path(item.path).parts
        if not item.path.startswith("/") or ".." in parts:
            raise WsError(f"provisioning file path {item.path!r} must be absolute without '..'")
        target = rootfs.joinpath(*parts[1:])
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, item.content)
            os.fchmod(fd, item.mode)
        finally:
            os.close(fd)
    return rootfs


def remove(directory: Path) -> bool:
    """Delete the instance; False when there was none."""
    if not directory.exists():
        return False
    shutil.rmtree(directory)
    return True
