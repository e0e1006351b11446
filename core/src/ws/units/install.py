"""Writing, enabling, starting and removing ws's units, and keeping them current (``ws apply``).

What ``ws systemd install`` wrote is recorded in ``STATE_DIR/systemd-units.json`` (how the units call ws,
the unit folder and each unit's content hash): ``ws apply`` renders the units again with the same
invocation and rewrites those that changed, ``ws systemd uninstall`` removes exactly what is recorded.
systemd is asked over D-Bus (:mod:`ws.systemd`): reload, enable, start, stop.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ws.context import Context
from ws.errors import UsageError, WsError
from ws.state import atomic_write
from ws.units.render import HEADER_MARK, NETWORKS_UNIT, Invocation, render

UNIT_DIR = Path("/etc/systemd/system")
RECORD_FILE = "systemd-units.json"
INVOKER_VARIABLES = ("SUDO_USER", "SUDO_UID", "SUDO_GID")
"""What makes ``ws`` resolve the login user as the installing ``sudo ws`` did (ws.provision.user)."""
START_TIMEOUT = 1800.0
PATTERNS = (NETWORKS_UNIT, "ws-workspace-*.service", "ws-agent-*.service")
"""The names of ws's units (``ws-nspawn-*`` transient units belong to the nspawn backend, not here)."""


@dataclass(frozen=True)
class Installed:
    invocation: Invocation
    unit_dir: Path
    units: dict[str, str]
    """Unit name -> sha256 of the content written."""


def require_systemd() -> None:
    """systemd must be PID 1 and answer on the system bus (exit status 2 otherwise)."""
    from ws import systemd

    if not systemd.systemd_is_init():
        raise UsageError(
            "systemd is not the init system here (no /run/systemd/system): there is nothing to install units "
            "into; `ws apply` brings the host up by hand"
        )
    if not systemd.bus_answers():
        raise UsageError("systemd does not answer on the system bus (is dbus running?)")


def current_invocation(ctx: Context, environ: dict[str, str] | None = None) -> Invocation:
    """This ws program, its configuration file and the invoking sudo user, as the units will call ws."""
    from ws import systemd

    environ = dict(os.environ) if environ is None else environ
    program = _ws_program()
    config = None if ctx.config.file is None else str(ctx.config.file)
    invoker: tuple[tuple[str, str], ...] = ()
    if environ.get("SUDO_USER") not in (None, "", "root"):
        invoker = tuple((key, environ[key]) for key in INVOKER_VARIABLES if environ.get(key))
    return Invocation(str(program), config, invoker, systemd.major_version())


def _ws_program() -> Path:
    """The ``ws`` command this process runs as (a launcher on PATH or the venv's console script)."""
    import shutil

    for candidate in (Path(sys.argv[0]), Path(sys.executable).parent / "ws", Path(shutil.which("ws") or "ws")):
        if candidate.name == "ws" and candidate.is_absolute() and os.access(candidate, os.X_OK):
            return candidate
    raise WsError("cannot find the ws program to run from the units (put ws on PATH)")


def install(ctx: Context, *, start: bool, unit_dir: Path = UNIT_DIR) -> dict:
    """Write and enable the units of the configuration (removing ws's units it no longer has), reload
    systemd and, with ``start``, start them in order; returns what changed."""
    require_systemd()
    previous = read_record(ctx)
    invocation = current_invocation(ctx)
    return _converge(ctx, invocation, unit_dir, previous, start_new=start, start_all=start)


def refresh(ctx: Context, *, dry_run: bool) -> dict | None:
    """``ws apply``: rewrite installed units the configuration changed; None if none are installed."""
    previous = read_record(ctx)
    if previous is None:
        return None
    units = render(ctx, previous.invocation)
    written, removed = _differences(previous, units)
    if dry_run or not (written or removed):
        return {"units": sorted(units), "written": written, "removed": removed, "started": []}
    require_systemd()
    return _converge(ctx, previous.invocation, previous.unit_dir, previous, start_new=True, start_all=False)


def uninstall(ctx: Context, *, unit_dir: Path = UNIT_DIR) -> dict:
    """Stop ws's units (their workspaces go down, networks stay), disable and remove them, reload."""
    from ws import systemd

    require_systemd()
    previous = read_record(ctx)
    folder = previous.unit_dir if previous is not None else unit_dir
    loaded = systemd.loaded_units(list(PATTERNS))  # also any left loaded without a file
    names = sorted(set(previous.units if previous else ()) | set(_ours_in(folder)) | set(loaded))
    _stop_in_order(names, ctx.progress)
    files = [name for name in names if (folder / name).exists()]
    if files:
        systemd.disable_unit_files(files)
    for name in names:
        (folder / name).unlink(missing_ok=True)
    systemd.daemon_reload()
    for name in names:
        systemd.reset_failed_unit(name)
    (ctx.state.root / RECORD_FILE).unlink(missing_ok=True)
    return {"removed": names}


def status(ctx: Context) -> list[dict]:
    """Each installed unit: present, current (as the configuration would render it), enabled, active."""
    from ws import systemd

    previous = read_record(ctx)
    if previous is None:
        return []
    rendered = render(ctx, previous.invocation)
    rows = []
    for name in sorted(set(previous.units) | set(rendered)):
        path = previous.unit_dir / name
        content = path.read_text() if path.exists() else None
        state = systemd.unit_state(name) if systemd.systemd_is_init() else None
        rows.append(
            {
                "unit": name,
                "present": content is not None,
                "current": content is not None and content == rendered.get(name),
                "enabled": systemd.unit_file_state(name) if systemd.systemd_is_init() else "unknown",
                "active": state.active_state if state else "inactive",
            }
        )
    return rows


def read_record(ctx: Context) -> Installed | None:
    try:
        raw = json.loads((ctx.state.root / RECORD_FILE).read_text())
        invocation = Invocation(
            raw["program"], raw["config"], tuple(tuple(pair) for pair in raw["environment"]), raw["systemd_version"]
        )
        return Installed(invocation, Path(raw["unit_dir"]), dict(raw["units"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WsError(f"cannot read {ctx.state.root / RECORD_FILE}: {exc}") from None


def _converge(
    ctx: Context,
    invocation: Invocation,
    unit_dir: Path,
    previous: Installed | None,
    *,
    start_new: bool,
    start_all: bool,
) -> dict:
    from ws import systemd

    units = render(ctx, invocation)
    written, removed = _differences(previous, units) if previous else (sorted(units), [])
    stale_files = [name for name in _ours_in(unit_dir) if name not in units and name not in removed]
    removed = sorted({*removed, *stale_files})
    if removed:
        systemd.disable_unit_files(removed)
    for name in removed:
        (unit_dir / name).unlink(missing_ok=True)
    for name in written:
        atomic_write(unit_dir / name, units[name].encode(), 0o644)
    _write_record(ctx, Installed(invocation, unit_dir, {name: _digest(text) for name, text in units.items()}))
    if units:
        systemd.enable_unit_files(sorted(units))  # links on disk; the reload then loads them into the targets
    systemd.daemon_reload()
    # A removed unit that ran is unloaded now: with its file gone its stop command is gone too, so stopping
    # it only makes systemd forget it; what it started (a workspace no longer autostart) keeps running.
    _stop_in_order(removed, ctx.progress)
    new = [name for name in units if previous is None or name not in previous.units]
    to_start = sorted(units) if start_all else sorted(new) if start_new else []
    started = _start_in_order(to_start, ctx.progress)
    return {"units": sorted(units), "written": written, "removed": removed, "started": started}


def _differences(previous: Installed | None, units: dict[str, str]) -> tuple[list[str], list[str]]:
    old = previous.units if previous else {}
    written = sorted(name for name, text in units.items() if old.get(name) != _digest(text))
    if previous is not None:
        written += sorted(name for name in units if name not in written and not (previous.unit_dir / name).exists())
    removed = sorted(name for name in old if name not in units)
    return sorted(written), removed


def _start_order(names: list[str]) -> list[str]:
    """Networks, then agents, then workspaces (systemd orders them anyway; this keeps progress readable)."""
    rank = {NETWORKS_UNIT: 0}
    return sorted(names, key=lambda name: (rank.get(name, 1 if name.startswith("ws-agent-") else 2), name))


def _start_in_order(names: list[str], progress: Callable[[str], None]) -> list[str]:
    from ws import systemd

    for name in _start_order(names):
        progress(f"starting {name}")
        systemd.start_unit(name)
        state = _wait_settled(name)
        if state != "active":
            raise WsError(f"{name} did not start ({state}); see: journalctl -u {name}")
    return _start_order(names)


def _stop_in_order(names: list[str], progress: Callable[[str], None]) -> None:
    from ws import systemd

    for name in reversed(_start_order(names)):
        state = systemd.unit_state(name)
        if state is None or state.active_state in ("inactive", "failed"):
            continue
        progress(f"stopping {name}")
        systemd.stop_unit(name)
        _wait_settled(name)


def _wait_settled(name: str, timeout: float = START_TIMEOUT) -> str:
    """Wait until the unit's state is no longer changing; returns it (``active``, ``failed``, ...)."""
    from ws import systemd

    deadline = time.monotonic() + timeout
    while True:
        state = systemd.unit_state(name)
        active = state.active_state if state else "inactive"
        if not (state and state.has_job) and active not in ("activating", "deactivating", "reloading"):
            return active
        if time.monotonic() > deadline:
            return active
        time.sleep(0.2)


def _ours_in(folder: Path) -> list[str]:
    """ws's unit files in ``folder``: the names ws uses, with ws's header (never another program's file)."""
    found = []
    for pattern in PATTERNS:
        for path in folder.glob(pattern):
            try:
                if path.read_text().startswith(HEADER_MARK):
                    found.append(path.name)
            except OSError:
                continue
    return sorted(found)


def _write_record(ctx: Context, installed: Installed) -> None:
    data = {
        "program": installed.invocation.program,
        "config": installed.invocation.config,
        "environment": [list(pair) for pair in installed.invocation.environment],
        "systemd_version": installed.invocation.systemd_version,
        "unit_dir": str(installed.unit_dir),
        "units": installed.units,
    }
    atomic_write(ctx.state.root / RECORD_FILE, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), 0o644)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
