"""The hook contract between core and plugins: the reference for plugin authors.

Every hook is prefixed ``ws_``. Three kinds:

* Registration hooks (``ws_workspace_types``, ``ws_networks``, ``ws_config_sections``,
  ``ws_register_commands``) are called on every plugin once: the command hook when the command line is
  listed, the others when something first needs the registry (so ``ws --help`` does not pay for them).
* Backend and network hooks (``ws_create`` ... ``ws_logs``, ``ws_network_attach``) are *dispatched*: core
  calls the implementation of the single plugin that registered the workspace's type (or network) and no
  other (see :mod:`ws.plugins`). Implementations therefore never need to check ``workspace.type``.
* Contribution hooks (``ws_provision_files``, ``ws_doctor_checks``, ``ws_renew_tunnel``) are called on
  every plugin and their results are collected.

``ctx`` is a :class:`ws.context.Context`: the validated configuration, the state directory, locks and a
way to reach other plugins (for example ``ctx.attach_network(workspace)``).

Plugin modules are imported for every ``ws`` invocation, ``ws --help`` included: keep their top level
light and import heavy libraries inside the hook implementations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from ws.context import Context
    from ws.types import (
        DoctorCheck,
        NetworkAttachment,
        ProvisionFile,
        Workspace,
        WorkspaceStatus,
        WorkspaceType,
    )

hookspec = pluggy.HookspecMarker("ws")


# --- registration -------------------------------------------------------------------------------------


@hookspec
def ws_workspace_types() -> list[WorkspaceType]:
    """Return the workspace types this plugin provides as a backend.

    A type name (or alias) may be provided by only one loaded plugin; a second claim is reported as a
    plugin load error. Configuration ``type = "..."`` selects the plugin, and every backend hook for that
    workspace is then dispatched to this plugin alone.
    """


@hookspec
def ws_networks() -> list[str]:
    """Return the names of the networks this plugin owns (core owns ``"sandbox"``).

    A workspace with ``network = "NAME"`` is attached through this plugin's ``ws_network_attach``.
    """


@hookspec
def ws_config_sections() -> dict[str, Any]:
    """Return ``{section_name: "package.module:ModelClass"}`` for top-level TOML sections this plugin owns.

    The reference is imported only when the configuration is read, so pydantic stays out of ``ws --help``;
    the model class itself is accepted too.

    Core validates ``[section_name]`` with the model (errors are reported with the file and key path like
    core's own) and exposes the result as ``ctx.config.sections[section_name]``. Import pydantic inside
    the hook implementation, not at module level.
    """


@hookspec
def ws_register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``ws`` command line (``cli.add_command(...)``)."""


# --- backend: dispatched to the one plugin providing the workspace's type ---------------------------------


@hookspec(firstresult=True)
def ws_create(workspace: Workspace, attachment: NetworkAttachment, ctx: Context) -> None:
    """Make the workspace's instance exist, ready to start, from its current image.

    Called by ``ws up`` with the core-computed identities and the network attachment. Must be idempotent
    and converge after a crash of an earlier call (leftovers of a killed run are the backend's to clean).
    Ephemeral backends re-create the instance here on every ``up``. Deliver the provisioning bundle
    (``ctx.provisioning(workspace, attachment)``, a :class:`ws.provision.Bundle` of files, first-boot steps
    and mounts) before the guest's first boot. Raise
    :class:`ws.errors.WsError` with a sentence for the user on failure.
    """


@hookspec(firstresult=True)
def ws_start(workspace: Workspace, ctx: Context) -> None:
    """Start the created instance and return once the guest is usable (or raise with a clear timeout)."""


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
def ws_exec(workspace: Workspace, ctx: Context, command: list[str], interactive: bool) -> int:
    """Run ``command`` in the workspace as the login user, streaming its output; return its exit status.

    An empty ``command`` opens a login shell. ``interactive`` asks for a terminal.
    """


@hookspec(firstresult=True)
def ws_logs(workspace: Workspace, ctx: Context, follow: bool) -> int:
    """Write the instance's console or journal log to stdout; return an exit status."""


# --- networks: dispatched to the one plugin owning the workspace's network -------------------------------


@hookspec(firstresult=True)
def ws_network_attach(workspace: Workspace, ctx: Context) -> NetworkAttachment:
    """Make sure the workspace's network is up and say where to plug the workspace in.

    Returns the bridge, the gateway and DNS addresses the guest must use. Must be idempotent: it is called
    on every ``ws up``.
    """


# --- contributions: called on every plugin, results collected ---------------------------------------------


@hookspec
def ws_provision_files(workspace: Workspace, attachment: NetworkAttachment, ctx: Context) -> list[ProvisionFile]:
    """Contribute files to the workspace's guest provisioning bundle (placed before first boot)."""


@hookspec
def ws_doctor_checks(ctx: Context) -> list[DoctorCheck]:
    """Check what this plugin needs on the host; ``ws doctor`` prints every check of every plugin."""


@hookspec
def ws_renew_tunnel(ctx: Context, force: bool) -> dict | None:
    """A VPN provider renews its tunnel (new token, key and server session) and returns a summary.

    Called by the provider's own schedule and by ``ws vpn renew``; plugins that are not VPN providers do
    not implement it. ``force`` renews even when the current session is still fresh.
    """
