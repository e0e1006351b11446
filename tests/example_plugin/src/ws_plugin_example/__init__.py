"""ws-plugin-example: a small but genuine ws backend, the worked example of docs/plugins.md.

An ``example`` workspace is a folder on the host (see :mod:`ws_plugin_example.instance`) and ``ws exec``
runs commands as ordinary host processes in the workspace's work folder. There is no isolation at all:
the backend exists to show (and let ws's tests drive) every hook of the plugin contract without root.

Besides the backend (whose options, ``[example]`` and ``[workspaces.NAME.example]``, set a greeting) it
owns the ``example`` network with its own subnet (``[example-net]``; the network exists only on paper, its
state is a file), the ``ws example-info`` command, event hooks that log, one doctor check, one provisioning
file and a pretend VPN session renewed by the network's maintenance, so that every hook in
:mod:`ws.hookspecs` has an implementation to copy.

The module is imported on every ``ws`` run, ``ws --help`` included: its top level imports only ws's light
modules and cheap standard-library modules; click, pydantic, subprocess and the instance module (json,
shutil, pathlib) are imported inside the hooks that need them.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from ws.api import (
    CheckStatus,
    DoctorCheck,
    MaintenanceResult,
    NetnsRef,
    Network,
    NetworkAttachment,
    NetworkStatus,
    ProvisionFile,
    State,
    WorkspaceStatus,
    WorkspaceType,
    WsError,
    hookimpl,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import click
    from ws.api import Context, CreateRequest, Workspace

EXAMPLE = "example"
"""The name of the type (and so of its options section ``[example]``) and of the network."""
NETWORK_SECTION = "example-net"
"""The network's own configuration section."""

WORKSPACE_TYPE = WorkspaceType(
    name=EXAMPLE,
    description="host folders and host processes (no isolation; an example for plugin authors)",
    ip_range=(130, 169),
    mac_seed=EXAMPLE,
    interface_prefix="ex-",
    options_model="ws_plugin_example.settings:ExampleOptions",
    image_format="none",
)
GREETING_FILE = "/etc/ws-example/greeting"
NETWORK_FILE = "network.json"
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
    return {NETWORK_SECTION: "ws_plugin_example.settings:ExampleNetwork"}


@hookimpl
def ws_register_commands(cli: click.Group) -> None:
    import click
    from ws.cli.common import pass_ws_context

    from ws_plugin_example import instance

    @click.command("example-info")
    @pass_ws_context
    def example_info(ctx: Context) -> None:
        """Show the example plugin's greeting and its instances."""
        click.echo(ctx.config.sections[EXAMPLE].greeting)
        root = ctx.state.root / EXAMPLE
        for directory in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else ():
            state = instance.read_state(directory)
            if state is not None:
                click.echo(f"{directory.name}: {state['state']}")

    cli.add_command(example_info)


# --- backend --------------------------------------------------------------------------------------------


@hookimpl
def ws_create(workspace: Workspace, request: CreateRequest, ctx: Context) -> object:
    """Core prepared the image, the attachment and the bundle; the returned handle reaches ``ws_start``."""
    from ws_plugin_example import instance

    directory = _dir(workspace, ctx)
    ctx.progress(f"{workspace.name}: writing the example instance")
    rootfs = instance.replace_rootfs(directory, request.bundle.files)
    instance.write_state(directory, "created")
    instance.log_event(directory, f"created on network {request.attachment.network} with rootfs {rootfs}")
    return {"image": request.image.identity}


@hookimpl
def ws_start(workspace: Workspace, handle: object | None, ctx: Context) -> None:
    from ws_plugin_example import instance

    directory = _dir(workspace, ctx)
    if instance.read_state(directory) is None:
        raise WsError(f"example instance {workspace.instance_name} does not exist; run ws up {workspace.name}")
    instance.write_state(directory, "running", started_at=time.time())
    instance.log_event(directory, f"started from {handle}")


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
    return _status(workspace, ctx.state.root)


@hookimpl
def ws_status_many(workspaces: list[Workspace], state_dir: Path, brief: bool) -> dict[str, WorkspaceStatus | WsError]:
    """``ws list`` and ``ws status``: every workspace's state without the loaded configuration (no ctx;
    plain options). A backend with an API answers all of them with one request, and with ``brief`` leaves
    out what costs more than the state; the example's states are cheap files, so it ignores ``brief``."""
    answers: dict[str, WorkspaceStatus | WsError] = {}
    for workspace in workspaces:
        try:
            answers[workspace.name] = _status(workspace, state_dir)
        except WsError as exc:  # a damaged state file: this workspace's error, not the whole list's
            answers[workspace.name] = exc
    return answers


def _status(workspace: Workspace, state_dir: Path) -> WorkspaceStatus:
    from ws_plugin_example import instance

    state = instance.read_state(instance.instance_dir(state_dir, workspace.instance_name))
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


@hookimpl
def ws_instance_netns(workspace: Workspace, ctx: Context) -> NetnsRef | None:
    """Example instances are host processes: their network namespace is the host's."""
    state = ws_status(workspace, ctx)
    return NetnsRef(path="/proc/1/ns/net") if state.state == State.RUNNING else None


# --- network ----------------------------------------------------------------------------------------------


@hookimpl
def ws_network_define(name: str, core: Any, sections: Mapping[str, Any]) -> Network:
    """The ``example`` network from its own section: its subnet, the host on .1, example workspaces in the
    range the section sets (core assigns their addresses inside it)."""
    import ipaddress

    settings = sections[NETWORK_SECTION]
    subnet = ipaddress.IPv4Network(settings.subnet)
    host = str(next(subnet.hosts()))
    return Network(
        name=name,
        bridge="",
        subnet=str(subnet),
        host_address=host,
        gateway=host,
        dns=(host,),
        ranges={EXAMPLE: tuple(settings.range)},
        masquerade=False,
    )


@hookimpl
def ws_network_up(network: Network, ctx: Context) -> list[str]:
    """The network is a file saying it is up (a real plugin creates its bridge, table ... here)."""
    import json

    path = _network_file(ctx)
    wanted = {"subnet": network.subnet}
    if _network_state(ctx) == wanted:
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted))
    return [f"network {network.name} up on {network.subnet}"]


@hookimpl
def ws_network_down(network: Network, ctx: Context) -> list[str]:
    path = _network_file(ctx)
    if not path.exists():
        return []
    path.unlink()
    return [f"network {network.name} down"]


@hookimpl
def ws_network_status(network: Network, ctx: Context) -> NetworkStatus:
    """Read from the real state (the file), never from a cache."""
    state = _network_state(ctx)
    return NetworkStatus(up=state == {"subnet": network.subnet}, detail=f"{network.subnet}", extra={"state": state})


@hookimpl
def ws_network_attach(network: Network, workspace: Workspace, ctx: Context) -> NetworkAttachment:
    """Example instances are host processes: no bridge to plug into, but the network must be up."""
    ws_network_up(network, ctx)
    return network.attachment()


@hookimpl
def ws_network_detach(network: Network, workspace: Workspace, ctx: Context) -> None:
    from ws_plugin_example import instance

    directory = _dir(workspace, ctx)
    if directory.exists():
        instance.log_event(directory, f"detached from network {network.name}")


@hookimpl
def ws_network_describe(network: Network, workspace: Workspace, ctx: Context) -> NetworkAttachment:
    return network.attachment()


@hookimpl
def ws_network_maintain(network: Network, ctx: Context, force: bool) -> MaintenanceResult:
    """A pretend VPN session (a random id in a file), renewed when missing or when forced."""
    import json
    import secrets

    path = ctx.state.root / EXAMPLE / TUNNEL_FILE
    try:
        session = json.loads(path.read_text())
    except (OSError, ValueError):
        session = None
    if session is not None and not force:
        return MaintenanceResult("unchanged", f"session {session['session']}")
    session = {"session": secrets.token_hex(8), "renewed_at": time.time()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(session))
    return MaintenanceResult("renewed", f"session {session['session']}")


# --- events -----------------------------------------------------------------------------------------------


@hookimpl
def ws_workspace_started(workspace: Workspace, attachment: NetworkAttachment, ctx: Context) -> None:
    """Event hooks see every workspace: this one notes the start of example workspaces only."""
    from ws_plugin_example import instance

    if workspace.type == EXAMPLE:
        instance.log_event(_dir(workspace, ctx), f"event: started on {attachment.network}")


@hookimpl
def ws_workspace_stopping(workspace: Workspace, ctx: Context) -> None:
    from ws_plugin_example import instance

    directory = _dir(workspace, ctx)
    if workspace.type == EXAMPLE and directory.exists():
        instance.log_event(directory, "event: stopping")


# --- contributions ----------------------------------------------------------------------------------------


@hookimpl
def ws_provision_files(workspace: Workspace, attachment: NetworkAttachment, ctx: Context) -> list[ProvisionFile]:
    """Contribution hooks see every workspace: this one adds its file to example workspaces only."""
    if workspace.type != EXAMPLE:
        return []
    return [ProvisionFile(GREETING_FILE, f"{workspace.options.greeting}, {workspace.name}\n".encode())]


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


def _dir(workspace: Workspace, ctx: Context) -> Path:
    from ws_plugin_example import instance

    return instance.instance_dir(ctx.state.root, workspace.instance_name)


def _network_file(ctx: Context) -> Path:
    return ctx.state.root / EXAMPLE / NETWORK_FILE


def _network_state(ctx: Context) -> dict | None:
    import json

    try:
        return json.loads(_network_file(ctx).read_text())
    except (OSError, ValueError):
        return None
