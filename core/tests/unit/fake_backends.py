"""An in-process test backend: the three first-party workspace types and a recording, directory-based
backend behind them, until the real backends land.

The module itself is the plugin (``extra_plugins=[("fake", fake_backends)]`` or the ``ws`` entry point
``fake = fake_backends`` that :func:`install_entry_point` writes for subprocess tests). Its state lives in
files under the state directory, so separate ``ws`` processes see the same instances:

* ``fake-backend/NAME.state``  ``running`` or ``stopped`` (absent file: no instance)
* ``fake-backend/calls.log``   one line per hook call: ``<time> <pid> <hook> <workspace> <phase>``

``WS_FAKE_START_DELAY`` (seconds) makes ``ws_start`` slow, to observe parallelism.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import ws
from ws.errors import WsError
from ws.types import Network, NetworkAttachment, NetworkStatus, State, WorkspaceStatus, WorkspaceType

if TYPE_CHECKING:
    from ws.api import CreateRequest, Workspace
    from ws.context import Context

try:  # imported by core's options check as "fake_backends:FakeOptions" (pydantic only in tests)
    from pydantic import BaseModel, ConfigDict

    class FakeOptions(BaseModel):
        """Any backend option is accepted, as a first-party backend's model would check its own."""

        model_config = ConfigDict(extra="allow", frozen=True)

except ImportError:  # pragma: no cover - pydantic is a dependency of ws
    pass

OPTIONS = "fake_backends:FakeOptions"
NO_IMAGE = "none"
"""The fake instances are files: core must not build ws's image for them."""
MICROVM = WorkspaceType(
    name="microvm",
    aliases=("vm",),
    mac_seed="vm",
    interface_prefix="vm-",
    ip_range=(10, 49),
    uses_cid=True,
    image_format=NO_IMAGE,
    options_model=OPTIONS,
)
NSPAWN = WorkspaceType(
    name="nspawn", aliases=("container",), interface_prefix="ve-", ip_range=(50, 89), image_format=NO_IMAGE
)
INCUS = WorkspaceType(
    name="incus",
    mac_seed="incus",
    ip_range=(90, 129),
    interface_prefix="wsi-",
    image_format=NO_IMAGE,
    options_model=OPTIONS,
)
TYPES = (MICROVM, NSPAWN, INCUS)
NETWORK = "fakenet"
"""A network this plugin owns, so ``ws up`` tests need no bridge (core's ``sandbox`` is a real one)."""
LOGGED_SECRET = "fake-s3cr3t-value"
"""Logged by ``ws_create`` under a secret-looking key: the log tests assert it never appears."""


@ws.hookimpl
def ws_workspace_types() -> list[WorkspaceType]:
    return list(TYPES)


@ws.hookimpl
def ws_networks() -> list[str]:
    return [NETWORK]


@ws.hookimpl
def ws_network_define(name: str, core, sections) -> Network:
    """The same subnet as the sandbox's, so address tests read the same on either network."""
    gateway = str(core.network.gateway)
    return Network(name, "fake-br", str(core.network.subnet), gateway, gateway, ())


@ws.hookimpl
def ws_network_up(network: Network, ctx: Context) -> list[str]:
    """Records the network as up (``fake-backend/network-NAME.up``); the first call reports a change."""
    marker = _network_marker(ctx, network)
    if marker.exists():
        return []
    marker.write_text("up")
    return [f"{network.name} up"]


@ws.hookimpl
def ws_network_down(network: Network, ctx: Context) -> list[str]:
    marker = _network_marker(ctx, network)
    if not marker.exists():
        return []
    marker.unlink()
    return [f"{network.name} down"]


@ws.hookimpl
def ws_network_status(network: Network, ctx: Context) -> NetworkStatus:
    up = _network_marker(ctx, network).exists()
    return NetworkStatus(up, "" if up else "no fake bridge")


@ws.hookimpl
def ws_network_attach(network: Network, workspace: Workspace, ctx: Context) -> NetworkAttachment:
    _record(ctx, "network_attach", workspace)
    return network.attachment()


@ws.hookimpl
def ws_network_describe(network: Network, workspace: Workspace, ctx: Context) -> NetworkAttachment:
    return network.attachment()


@ws.hookimpl
def ws_status(workspace: Workspace, ctx: Context) -> WorkspaceStatus:
    _record(ctx, "status", workspace)
    try:
        state = State(_state_file(ctx, workspace).read_text())
    except FileNotFoundError:
        return WorkspaceStatus(State.ABSENT)
    return WorkspaceStatus(state, ip=workspace.ip if state == State.RUNNING else None, image=workspace.image)


@ws.hookimpl
def ws_create(workspace: Workspace, request: CreateRequest, ctx: Context) -> None:
    _record(ctx, "create", workspace)
    bridge = request.attachment.bridge
    ctx.log.info("fake instance created", workspace=workspace.name, bridge=bridge, token=LOGGED_SECRET)
    _state_file(ctx, workspace).write_text(State.STOPPED.value)


@ws.hookimpl
def ws_start(workspace: Workspace, handle: object, ctx: Context) -> None:
    _record(ctx, "start", workspace, "begin")
    time.sleep(float(os.environ.get("WS_FAKE_START_DELAY", "0")))
    _state_file(ctx, workspace).write_text(State.RUNNING.value)
    _record(ctx, "start", workspace, "end")


@ws.hookimpl
def ws_stop(workspace: Workspace, ctx: Context) -> None:
    _record(ctx, "stop", workspace)
    _state_file(ctx, workspace).unlink(missing_ok=True)  # ephemeral, like the real backends


@ws.hookimpl
def ws_destroy(workspace: Workspace, ctx: Context, purge: bool) -> None:
    _record(ctx, "destroy", workspace, f"purge={purge}")
    _state_file(ctx, workspace).unlink(missing_ok=True)


@ws.hookimpl
def ws_exec(workspace: Workspace, ctx: Context, command: list[str], interactive: bool) -> int:
    """Runs the command on the host inside the work folder: enough to check exit statuses and output."""
    _record(ctx, "exec", workspace)
    if ws_status(workspace, ctx).state != State.RUNNING:
        raise WsError(f"workspace {workspace.name} is not running")
    return subprocess.run(command or ["true"], cwd=workspace.paths.work, check=False).returncode


@ws.hookimpl
def ws_logs(workspace: Workspace, ctx: Context, follow: bool) -> int:
    for line in calls(ctx.state.root):
        if line[3] == workspace.name:
            print(" ".join(line[2:]), file=sys.stdout, flush=True)
    return 0


def calls(state_dir: Path) -> list[list[str]]:
    """The recorded hook calls, oldest first, as split lines."""
    try:
        return [line.split() for line in (state_dir / "fake-backend" / "calls.log").read_text().splitlines()]
    except FileNotFoundError:
        return []


def hooks(state_dir: Path, name: str) -> list[str]:
    """The hooks called for workspace ``name``, in order (``start`` once, at its beginning)."""
    return [c[2] for c in calls(state_dir) if c[3] == name and c[4:] != ["end"]]


def install_entry_point(folder: Path) -> dict[str, str]:
    """Make this module a ``ws`` entry point for subprocesses: a minimal dist-info in ``folder``; returns
    the environment (PYTHONPATH) that puts it and this module on ``sys.path``."""
    info = folder / "ws_fake_backend-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ws-fake-backend\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[ws]\nfake = fake_backends\n")
    return {"PYTHONPATH": os.pathsep.join([str(folder), str(Path(__file__).parent)])}


def _network_marker(ctx: Context, network: Network) -> Path:
    folder = ctx.state.root / "fake-backend"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"network-{network.name}.up"


def _state_file(ctx: Context, workspace: Workspace) -> Path:
    folder = ctx.state.root / "fake-backend"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{workspace.name}.state"


def _record(ctx: Context, hook: str, workspace: Workspace, phase: str = "-") -> None:
    folder = ctx.state.root / "fake-backend"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "calls.log").open("a") as log:  # one short O_APPEND write per line: safe across threads
        log.write(f"{time.time():.6f} {os.getpid()} {hook} {workspace.name} {phase}\n")
