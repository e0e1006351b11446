"""``ws doctor`` for nspawn: the program and its version, user namespaces, idmapped mounts, the supervisor.

When no workspace uses nspawn, problems are warnings (nothing is broken yet), otherwise failures.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from ws.types import CheckStatus, DoctorCheck

if TYPE_CHECKING:
    from ws.api import Context

MIN_VERSION = 250  # idmapped binds (--bind=...:idmap)


def checks(ctx: Context) -> list[DoctorCheck]:
    from ws_plugin_nspawn import backend, mounts

    used = any(w.type == "nspawn" for w in ctx.config.workspaces.values())
    bad = CheckStatus.FAIL if used else CheckStatus.WARN
    settings = backend.settings_for(ctx)
    result = [_program_check(settings.nspawn, bad)]
    max_namespaces = _read_int("/proc/sys/user/max_user_namespaces")
    if max_namespaces:
        result.append(DoctorCheck("nspawn: user namespaces", CheckStatus.OK, f"up to {max_namespaces}"))
    else:
        fix = "sysctl -w user.max_user_namespaces=15000"
        result.append(DoctorCheck("nspawn: user namespaces", bad, "user namespaces are disabled", fix))
    probe = ctx.state.root / "nspawn" / f".idmap-probe-{os.getpid()}"
    try:
        probe.mkdir(parents=True, exist_ok=True)
        problem = mounts.supported(probe)
    except OSError as exc:
        problem = f"cannot probe in {probe.parent}: {exc}"
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()
    if problem is None:
        result.append(DoctorCheck("nspawn: idmapped mounts", CheckStatus.OK, f"supported on {ctx.state.root}"))
    else:
        fix = "use Linux >= 5.19 and a state_dir on ext4, xfs, btrfs or tmpfs"
        result.append(DoctorCheck("nspawn: idmapped mounts", bad, problem, fix))
    sup = backend.supervisor(ctx)
    if sup.kind == "systemd":
        detail = "systemd over D-Bus: transient units, machined, the journal"
        result.append(DoctorCheck("nspawn: supervisor", CheckStatus.OK, detail))
    else:
        result.append(_detached_check(ctx))
    return result


def _detached_check(ctx: Context) -> DoctorCheck:
    """The detached supervisor, and through which cgroup hierarchy it can apply ``cpus`` and ``memory``."""
    from ws.supervise import cgroups

    plans = cgroups.planned_limits("doctor", 1.0, 1)
    applied = [f"{plan.controller} through {plan.hierarchy}" for plan in plans if isinstance(plan, cgroups.Limit)]
    missing = [plan for plan in plans if isinstance(plan, str)]
    detail = "systemd is not PID 1: detached processes with pid files, own cgroups"
    detail += f"; cpus and memory limits: {', '.join(applied)}" if applied else ""
    detail += f"; {'; '.join(missing)}" if missing else ""
    limited = any(
        w.type == "nspawn" and (w.cpus is not None or w.memory_mib is not None) for w in ctx.config.workspaces.values()
    )
    return DoctorCheck("nspawn: supervisor", CheckStatus.WARN if missing and limited else CheckStatus.OK, detail)


def _program_check(program: str, bad: CheckStatus) -> DoctorCheck:
    path = shutil.which(program)
    if path is None:
        return DoctorCheck("nspawn: systemd-nspawn", bad, f"{program} not found", "apt-get install systemd-container")
    first = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout.splitlines()
    version = first[0] if first else "unknown version"
    number = next((int(word) for word in version.split() if word.isdigit()), 0)
    if number < MIN_VERSION:
        return DoctorCheck(
            "nspawn: systemd-nspawn",
            bad,
            f"{version}: idmapped binds need systemd >= {MIN_VERSION}",
            "upgrade systemd-container",
        )
    return DoctorCheck("nspawn: systemd-nspawn", CheckStatus.OK, f"{path}: {version}")


def _read_int(path: str) -> int:
    try:
        return int(Path(path).read_text())
    except (OSError, ValueError):
        return 0
