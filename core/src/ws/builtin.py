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
    from pathlib import Path

    from ws.context import Context
    from ws.types import DoctorCheck, NetworkAttachment, Workspace

SANDBOX = "sandbox"


@hookimpl
def ws_networks() -> list[str]:
    return [SANDBOX]


@hookimpl
def ws_network_attach(workspace: Workspace, ctx: Context) -> NetworkAttachment:
    """Bring the sandbox network up if it is not (a cheap no-op when it is), so ``ws up`` alone suffices."""
    from ws.network import sandbox

    ensure_sandbox(ctx)
    return sandbox.attachment(ctx.config.core.network)


def ensure_sandbox(ctx: Context) -> list[str]:
    """Create or repair the sandbox network and the host files naming the workspaces; return the changes.

    Shared by ``ws network up`` and every ``ws up`` on the sandbox network.
    """
    from ws.network import hostfiles, sandbox

    network = ctx.config.core.network
    with ctx.lock("network", network.bridge):
        unmanaged = {f"{wtype.interface_prefix}*" for wtype in ctx.plugins.types.values()}
        changes = sandbox.ensure_up(network, ctx.state.root, ctx.log, unmanaged=unmanaged).changes
        entries = hostfiles.entries_for(ctx.config.workspaces.values())
        owner = str(ctx.state.root)
        return [*changes, *hostfiles.sync_host_files(entries, owner, known_hosts=known_hosts_file(ctx))]


def known_hosts_file(ctx: Context) -> Path:
    """ws's own known_hosts with every workspace's host key, used by ``ws ssh``."""
    return ctx.state.root / "ssh" / "known_hosts"


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
