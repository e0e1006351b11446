"""Core's own plugin: the ``sandbox`` network and core's host checks.

It goes through the same hooks as any third-party plugin, so backends reach the sandbox network exactly
as they would reach a network another plugin owns.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from ws import hookimpl

if TYPE_CHECKING:
    from ws.context import Context
    from ws.types import DoctorCheck, NetworkAttachment, Workspace

SANDBOX = "sandbox"


@hookimpl
def ws_networks() -> list[str]:
    return [SANDBOX]


@hookimpl
def ws_network_attach(workspace: Workspace, ctx: Context) -> NetworkAttachment:
    from ws.types import NetworkAttachment

    network = ctx.config.core.network
    return NetworkAttachment(
        network=SANDBOX,
        bridge=network.bridge,
        gateway=str(network.gateway),
        dns=(str(network.gateway),),
        prefixlen=network.subnet.prefixlen,
    )


@hookimpl
def ws_doctor_checks(ctx: Context) -> list[DoctorCheck]:
    from ws.types import CheckStatus, DoctorCheck

    checks = [
        DoctorCheck("python", CheckStatus.OK, sys.version.split()[0]),
        DoctorCheck("configuration", CheckStatus.OK, ctx.config.source),
        _state_dir_check(ctx),
    ]
    if not ctx.plugins.types:
        checks.append(
            DoctorCheck(
                "backends",
                CheckStatus.FAIL,
                "no backend plugin is installed",
                "install one, e.g. pip install ws-plugin-incus",
            )
        )
    else:
        checks.append(
            DoctorCheck("backends", CheckStatus.OK, ", ".join(sorted({t.name for t in ctx.plugins.types.values()})))
        )
    checks += [
        DoctorCheck(
            f"plugin {failed.name}", CheckStatus.FAIL, failed.error or "", f"fix or uninstall {failed.distribution}"
        )
        for failed in ctx.plugins.failed
    ]
    return checks


def _state_dir_check(ctx: Context) -> DoctorCheck:
    from ws.types import CheckStatus, DoctorCheck

    root = ctx.state.root
    existing = next((p for p in (root, *root.parents) if p.exists()), root)
    if os.access(existing, os.W_OK):
        return DoctorCheck("state directory", CheckStatus.OK, f"{root} is writable")
    return DoctorCheck(
        "state directory",
        CheckStatus.FAIL,
        f"{root} is not writable by uid {os.geteuid()}",
        "run ws as root (sudo) or set state_dir to a folder you own",
    )
