"""ws-plugin-example: a small but genuine ws backend, the worked example of docs/plugins.md.

An ``example`` workspace is a folder on the host (see :mod:`ws_plugin_example.instance`) and ``ws exec``
runs commands as ordinary host processes in the workspace's work folder. There is no isolation at all:
the backend exists to show (and let ws's tests drive) every hook of the plugin contract without root.

Besides the backend it owns the ``example`` network (an attachment that exists only on paper), the
``[example]`` configuration section, the ``ws example-info`` command, one doctor check, one provisioning
file and a pretend VPN tunnel, so that every hook in :mod:`ws.hookspecs` has an implementation to copy.

The module is imported on every ``ws`` run, ``ws --help`` included: its top level imports only ws's light
modules and cheap standard-library modules; click, pydantic, subprocess and the instance module (json,
shutil, pathlib) are imported inside the hooks that need them.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from ws import hookimpl
from ws.errors import WsError
from ws.types import (
    CheckStatus,
    DoctorCheck,
    NetworkAttachment,
    ProvisionFile,
    State,
    WorkspaceStatus,
    WorkspaceType,
)

if TYPE_CHECKING:
    from pathlib import Path

    import click
    from ws.context import Context
    from ws.types import Workspace

EXAMPLE = "example"
"""The name of everything this plugin owns: the type, the network and the config section."""

WORKSPACE_TYPE = WorkspaceType(
    name=EXAMPLE,
    description="host folders and host processes (no isolation; an example for plugin authors)",
    ip_range=(130, 169),
    mac_seed=EXAMPLE,
    interface_prefix="ex-",
)
GREETING_FILE = "/etc/ws-example/greeting"
TUNNEL_FILE = "tunnel.json"


# --- registration -------------------------------------------------------------------------------------


@hookimpl
def ws_workspace_types() -> list[WorkspaceType]:
    return [WORKSPACE_TYPE]


@hookimpl
def ws_networks() -> list[str]:
    return [EXAMPLE]


@hookimpl
def ws_config_sections() -> dict[str, Any]:
    from pydantic import BaseModel, ConfigDict

    class ExampleSection(BaseModel):
        """``[example]``: the greeting the example puts into every example workspace."""

        model_config = ConfigDict(extra="forbid", strict=True)
        greeting: str = "hello"

    return {EXAMPLE: ExampleSection}


@hookimpl
def ws_register_commands(cli: click.Group) -> None:
    import click
    from ws.cli.common import pass_ws_context

    from ws_plugin_example import instance

    @click.command("example-info")
    @pass_ws_context
    def example_info(ctx: Context) -> None:
        """Show the example plugin's greeting and its instances."""
        click.echo(_greeting(ctx))
        root = ctx.state.root / EXAMPLE
        for directory in sorted(root.iterdir()) if root.is_dir() else ():
            state = instance.read_state(directory)
            if state is not None:
                click.echo(f"{directory.name}: {state['state']}")

    cli.add_command(example_info)


# --- backend --------------------------------------------------------------------------------------------


@hookimpl
def ws_create(workspace: Workspace, attachment: NetworkAttachment, ctx: Context) -> None:
    from ws_plugin_example import instance

    directory = _dir(workspace, ctx)
    rootfs = instance.replace_rootfs(directory, ctx.provisioning(workspace, attachment).files)
    instance.write_state(directory, "created")
    instance.log_event(directory, f"created on network {attachment.network} with rootfs {rootfs}")


@hookimpl
def ws_start(workspace: Workspace, ctx: Context) -> None:
    from ws_plugin_example import instance

    directory = _dir(workspace, ctx)
    if instance.read_state(directory) is None:
        raise WsError(f"example instance {workspace.instance_name} does not exist; run ws up {workspace.name}")
    instance.write_state(directory, "running", started_at=time.time())
    instance.log_event(directory, "started")


@hookimpl
def ws_stop(workspace: Workspace, ctx: Context) -> None:
    from ws_plugin_example import instance

    directory = _dir(workspace, ctx)
    state = instance.read_state(directory)
    if state is None or state["state"] == "stopped":
        return
    instance.write_state(directory, "stopped")
    instance.log_event(directory, "stopped")


@hookimpl
def ws_destroy(workspace: Workspace, ctx: Context, purge: bool) -> None:
    from ws_plugin_example import instance

    instance.remove(_dir(workspace, ctx))


@hookimpl
def ws_status(workspace: Workspace, ctx: Context) -> WorkspaceStatus:
    from ws_plugin_example import instance

    state = instance.read_state(_dir(workspace, ctx))
    if state is None:
        return WorkspaceStatus(State.ABSENT)
    if state["state"] == "running":
        return WorkspaceStatus(State.RUNNING, ip=workspace.ip, started_at=state["started_at"])
    detail = "created, never started" if state["state"] == "created" else ""
    return WorkspaceStatus(State.STOPPED, detail=detail)


@hookimpl
def ws_exec(workspace: Workspace, ctx: Context, command: list[str], interactive: bool) -> int:
    import subprocess

    from ws_plugin_example import instance

    directory = _dir(workspace, ctx)
    state = instance.read_state(directory)
    if state is None or state["state"] != "running":
        raise WsError(f"workspace {workspace.name} is not running; run ws up {workspace.name}")
    argv = command or [os.environ.get("SHELL", "/bin/sh"), "-l"]
    environ = {**os.environ, "WS_WORKSPACE": workspace.name}
    try:
        code = subprocess.run(argv, cwd=workspace.paths.work, env=environ, check=False).returncode
    except FileNotFoundError:
        print(f"ws: {argv[0]}: command not found in workspace {workspace.name}", file=sys.stderr)
        code = 127
    instance.log_event(directory, f"exec {argv[0]} exited with {code}")
    return code


@hookimpl
def ws_logs(workspace: Workspace, ctx: Context, follow: bool) -> int:
    """The event log; ``follow`` prints the same, as the log only grows while ws commands run."""
    from ws_plugin_example import instance

    directory = _dir(workspace, ctx)
    if not directory.exists():
        raise WsError(f"workspace {workspace.name} has no instance; run ws up {workspace.name}")
    sys.stdout.write(instance.read_events(directory))
    sys.stdout.flush()
    return 0


# --- network ----------------------------------------------------------------------------------------------


@hookimpl
def ws_network_attach(workspace: Workspace, ctx: Context) -> NetworkAttachment:
    """Example instances are host processes, so the network has no bridge to bring up."""
    gateway = str(ctx.config.core.network.gateway)
    return NetworkAttachment(network=EXAMPLE, bridge="", gateway=gateway, dns=(gateway,), prefixlen=workspace.prefixlen)


# --- contributions ----------------------------------------------------------------------------------------


@hookimpl
def ws_provision_files(workspace: Workspace, attachment: NetworkAttachment, ctx: Context) -> list[ProvisionFile]:
    """Contribution hooks see every workspace: this one adds its file to example workspaces only."""
    if workspace.type != EXAMPLE:
        return []
    return [ProvisionFile(GREETING_FILE, f"{_greeting(ctx)}, {workspace.name}\n".encode())]


@hookimpl
def ws_doctor_checks(ctx: Context) -> list[DoctorCheck]:
    root = ctx.state.root / EXAMPLE
    existing = next(p for p in (root, *root.parents) if p.exists())
    if os.access(existing, os.W_OK):
        return [DoctorCheck("example instances", CheckStatus.OK, f"kept under {root}")]
    return [
        DoctorCheck(
            "example instances",
            CheckStatus.FAIL,
            f"{existing} is not writable",
            "set state_dir to a folder you own",
        )
    ]


@hookimpl
def ws_renew_tunnel(ctx: Context, force: bool) -> dict | None:
    """A pretend VPN session (a random id in a file), renewed when missing or when forced."""
    import json
    import secrets

    path = ctx.state.root / EXAMPLE / TUNNEL_FILE
    try:
        session = json.loads(path.read_text())
    except (OSError, ValueError):
        session = None
    if session is not None and not force:
        return {"provider": EXAMPLE, "renewed": False, **session}
    session = {"session": secrets.token_hex(8), "renewed_at": time.time()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(session))
    return {"provider": EXAMPLE, "renewed": True, **session}


def _dir(workspace: Workspace, ctx: Context) -> Path:
    from ws_plugin_example import instance

    return instance.instance_dir(ctx.state.root, workspace.instance_name)


def _greeting(ctx: Context) -> str:
    return ctx.config.sections[EXAMPLE].greeting
