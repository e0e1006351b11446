"""The hook contract between core and plugins (version 2): the reference for plugin authors.

Every hook is prefixed ``ws_``. Four kinds:

* Registration hooks (``ws_workspace_types``, ``ws_networks``, ``ws_config_sections``,
  ``ws_register_commands``) are called on every plugin once: the command hook when the command line is
  listed, the others when something first needs the registry (so ``ws --help`` does not pay for them).
* Backend hooks (``ws_create`` ... ``ws_instance_netns``) are *dispatched* to the single plugin that
  registered the workspace's type, and network hooks (``ws_network_*``) to the single plugin that
  registered the network's name (see :mod:`ws.plugins.registry`). Implementations never check
  ``workspace.type`` or a network's name to find out whether a call is theirs.
* Event hooks (``ws_workspace_started``, ``ws_workspace_stopping``) are called on every plugin.
* Contribution hooks (``ws_provision_files``, ``ws_doctor_checks``) are called on every plugin and their
  results are collected.

Plugin authors import what they need from :mod:`ws.api` (types, the ``Context`` protocol, errors,
``hookimpl``). This module imports nothing of ws at run time.

Plugin modules are imported for every ``ws`` invocation, ``ws --help`` included: keep their top level
light and import heavy libraries inside the hook implementations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    import click

    from ws.api import (
        Context,
        CreateRequest,
        DoctorCheck,
        MaintenanceResult,
        NetnsRef,
        Network,
        NetworkAttachment,
        NetworkStatus,
        ProvisionFile,
        Workspace,
        WorkspaceStatus,
        WorkspaceType,
        WsError,
    )

hookspec = pluggy.HookspecMarker("ws")


# --- registration -------------------------------------------------------------------------------------


@hookspec
def ws_workspace_types() -> list[WorkspaceType]:
    """Return the workspace types this plugin provides as a backend.

    A type name (or alias) may be provided by only one loaded plugin; a second claim is reported as a
    plugin load error. Configuration ``type = "..."`` selects the plugin, and every backend hook for that
    workspace is then dispatched to this plugin alone. A type's ``options_model`` validates ``[<type>]``
    and ``[workspaces.NAME.<type>]`` with the rest of the configuration.
    """


@hookspec
def ws_networks() -> list[str]:
    """Return the names of the networks this plugin owns (core owns ``"sandbox"``).

    A workspace with ``network = "NAME"`` is attached through this plugin, which defines the network from
    the configuration with ``ws_network_define`` and implements its lifecycle hooks.
    """


@hookspec
def ws_config_sections() -> dict[str, Any]:
    """Return ``{section_name: "package.module:ModelClass"}`` for top-level TOML sections this plugin owns.

    The reference is imported only when the configuration is read, so pydantic stays out of ``ws --help``;
    the model class itself is accepted too. Core validates ``[section_name]`` with the model (errors are
    reported with the file and key path like core's own) and exposes the result as
    ``ctx.config.sections[section_name]``.
    """


@hookspec
def ws_register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``ws`` command line (``cli.add_command(...)``)."""


# --- backend: dispatched to the one plugin providing the workspace's type ---------------------------------


@hookspec(firstresult=True)
def ws_create(workspace: Workspace, request: CreateRequest, ctx: Context) -> object | None:
    """Make the workspace's instance exist, ready to start, from ``request.image``.

    Core has prepared everything the guest sees: the network attachment (``request.attachment``), the
    image (``request.image``: ws's build with its root file system, plus kernel and initrd for types
    whose ``image_format`` is ``"kernel"``; or a reference the backend resolves) and the provisioning
    bundle (``request.bundle``),
    which the backend delivers before the guest's first boot. Must be idempotent and converge after a
    crash of an earlier call. Ephemeral backends re-create the instance here on every ``up``. Whatever it
    returns is handed to ``ws_start`` (state between the two never lives in module globals). Report
    progress with ``ctx.progress``; raise :class:`ws.api.WsError` with a sentence for the user on failure.
    """


@hookspec(firstresult=True)
def ws_start(workspace: Workspace, handle: object | None, ctx: Context) -> None:
    """Start the created instance and return once the guest is usable (sshd answers: use
    :func:`ws.api.wait_for_ssh`), or raise with a clear timeout. ``handle`` is what ``ws_create`` returned."""


@hookspec(firstresult=True)
def ws_stop(workspace: Workspace, ctx: Context) -> None:
    """Stop the instance; ephemeral backends also delete it. Host folders are never touched.

    Stopping an absent or stopped workspace succeeds.
    """


@hookspec(firstresult=True)
def ws_destroy(workspace: Workspace, ctx: Context, purge: bool) -> None:
    """Stop and remove everything the backend created for the workspace, images included.

    Core removes the host folders afterwards when ``purge`` is true; the backend only needs ``purge`` if
    it keeps host-side data of its own.
    """


@hookspec(firstresult=True)
def ws_status(workspace: Workspace, ctx: Context) -> WorkspaceStatus:
    """Report the real state of the instance as the backend sees it (never from a cache)."""


@hookspec(firstresult=True)
def ws_status_many(workspaces: list[Workspace], state_dir: Path, brief: bool) -> dict[str, WorkspaceStatus | WsError]:
    """Optional: the real state of several workspaces of this plugin's types at once, for ``ws list``,
    ``ws status`` and shell prompts, which must answer at interactive speed.

    Return ``{name: status}`` with what ``ws_status`` would report for each workspace, or the
    :class:`ws.api.WsError` it would raise. With ``brief`` (``ws list``) only each status's ``state`` is
    used: leave out what costs the backend more (addresses, uptime, image), so listing many running
    workspaces stays as fast as listing stopped ones. Core calls this hook without loading the configuration
    (from its validated snapshot): ``workspace.options`` is plain data here (the options model dumped
    in JSON mode: paths as strings), there is no ``ctx`` (``state_dir`` is ``ctx.state.root``), and the
    implementation must not import heavy libraries (pydantic, HTTP client libraries): the whole command
    has a budget of a few milliseconds. Backends without it are asked ``ws_status`` one workspace at a
    time, with the configuration loaded.
    """


@hookspec(firstresult=True)
def ws_exec(workspace: Workspace, ctx: Context, command: list[str], interactive: bool) -> int:
    """Run ``command`` in the workspace as the login user, streaming its output; return its exit status.

    An empty ``command`` opens a login shell. ``interactive`` asks for a terminal.
    """


@hookspec(firstresult=True)
def ws_logs(workspace: Workspace, ctx: Context, follow: bool) -> int:
    """Write the instance's console or journal log to stdout; return an exit status."""


@hookspec(firstresult=True)
def ws_instance_netns(workspace: Workspace, ctx: Context) -> NetnsRef | None:
    """Where the running instance's network namespace is (a pid inside it, or a netns path), so a network
    plugin can move an interface into the guest; None when the instance is not running."""


# --- networks: dispatched to the one plugin owning the network's name -------------------------------------


@hookspec(firstresult=True)
def ws_network_define(name: str, core: Any, sections: Mapping[str, Any]) -> Network:
    """Return the typed record of network ``name`` from the configuration: the plugin's own section
    (``sections[...]``) or, for core's sandbox, ``core.network``. Core assigns workspace addresses inside
    its subnet and ranges. Raise ``ValueError`` with a sentence when the configuration cannot define it."""


@hookspec(firstresult=True)
def ws_network_up(network: Network, ctx: Context) -> list[str]:
    """Create or repair the network on the host; return the changes made (empty when it already was up).
    Idempotent and cheap when nothing differs: core calls it before bringing workspaces up."""


@hookspec(firstresult=True)
def ws_network_down(network: Network, ctx: Context) -> list[str]:
    """Remove everything ``ws_network_up`` created; return the changes. Succeeds when nothing is up."""


@hookspec(firstresult=True)
def ws_network_status(network: Network, ctx: Context) -> NetworkStatus:
    """Report the network's real state as the kernel shows it (never from a cache)."""


@hookspec(firstresult=True)
def ws_network_attach(network: Network, workspace: Workspace, ctx: Context) -> NetworkAttachment:
    """Make sure the network is up for this workspace and say where to plug it in (bridge, gateway, DNS).
    Called on every ``ws up``, so it must be idempotent."""


@hookspec(firstresult=True)
def ws_network_detach(network: Network, workspace: Workspace, ctx: Context) -> None:
    """The workspace went down or was destroyed: release what the network keeps for it (forwarded ports,
    host entries). Must succeed when nothing is attached."""


@hookspec(firstresult=True)
def ws_network_describe(network: Network, workspace: Workspace, ctx: Context) -> NetworkAttachment:
    """The attachment ``ws_network_attach`` would return, computed without side effects (for
    ``ws provision show`` and ``ws up --dry-run``)."""


@hookspec(firstresult=True)
def ws_network_maintain(network: Network, ctx: Context, force: bool) -> MaintenanceResult:
    """Periodic upkeep (a VPN renews its session: new token, key and server); ``force`` renews even when
    the current session is still fresh. Networks without upkeep need not implement it."""


# --- events: called on every plugin ------------------------------------------------------------------------


@hookspec
def ws_workspace_started(workspace: Workspace, attachment: NetworkAttachment, ctx: Context) -> None:
    """A workspace is up (after ``ws_start`` returned): for example a network forwards a port to it."""


@hookspec
def ws_workspace_stopping(workspace: Workspace, ctx: Context) -> None:
    """A workspace is about to be stopped or destroyed (before ``ws_stop``)."""


# --- contributions: called on every plugin, results collected ---------------------------------------------


@hookspec
def ws_provision_files(workspace: Workspace, attachment: NetworkAttachment, ctx: Context) -> list[ProvisionFile]:
    """Contribute files to the workspace's guest provisioning bundle (placed before first boot)."""


@hookspec
def ws_doctor_checks(ctx: Context) -> list[DoctorCheck]:
    """Check what this plugin needs on the host; ``ws doctor`` prints every check of every plugin."""
