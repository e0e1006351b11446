"""Core's own plugin for core's host checks (``ws doctor``); the sandbox network is :mod:`ws.sandbox.plugin`."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from ws import hookimpl

if TYPE_CHECKING:
    from ws.api import Context, DoctorCheck


@hookimpl
def ws_doctor_checks(ctx: Context) -> list[DoctorCheck]:
    from ws.network import doctor
    from ws.types import CheckStatus, DoctorCheck

    checks = [
        DoctorCheck("python", CheckStatus.OK, sys.version.split()[0]),
        DoctorCheck("configuration", CheckStatus.OK, ctx.config.source),
        _state_dir_check(ctx),
        *doctor.checks(ctx.config.core.network, ctx.state.root),
    ]
    if not ctx.registry.types:
        from ws.hints import no_backend_hint

        checks.append(DoctorCheck("backends", CheckStatus.FAIL, "no backend plugin is installed", no_backend_hint()))
    else:
        checks.append(
            DoctorCheck("backends", CheckStatus.OK, ", ".join(sorted({t.name for t in ctx.registry.types.values()})))
        )
    checks += [
        DoctorCheck(
            f"plugin {failed.name}", CheckStatus.FAIL, failed.error or "", f"fix or uninstall {failed.distribution}"
        )
        for failed in ctx.registry.failed
    ]
    return checks


def _state_dir_check(ctx: Context) -> DoctorCheck:
    from ws.types import CheckStatus, DoctorCheck

    root = ctx.state.root
    existing = next((p for p in (root, *root.parents) if p.exists()), root)
    if not os.access(existing, os.W_OK):
        return DoctorCheck(
            "state directory",
            CheckStatus.FAIL,
            f"{root} is not writable by uid {os.geteuid()}",
            "run ws as root (sudo) or set state_dir to a folder you own",
        )
    info = existing.stat()
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        return DoctorCheck(
            "state directory",
            CheckStatus.FAIL,
            f"{existing} belongs to uid {info.st_uid} with mode {info.st_mode & 0o7777:04o}: whoever can write it "
            "can change the rules, images and keys ws uses",
            f"chown {os.geteuid()} {existing} && chmod go-w {existing}",
        )
    return DoctorCheck("state directory", CheckStatus.OK, f"{root} is writable and only by uid {os.geteuid()}")
