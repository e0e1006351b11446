"""The hook implementations of ws-plugin-pia (entry point ``pia`` in group ``ws``): a thin layer that only
forwards to the modules.

Imported on every ``ws`` invocation: only ws's light modules here; click, pydantic, httpx, cryptography and
pyroute2 are imported inside the hooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ws import hookimpl

if TYPE_CHECKING:
    import click
    from ws.api import (
        Context,
        DoctorCheck,
        MaintenanceResult,
        Network,
        NetworkAttachment,
        NetworkStatus,
        ProvisionFile,
        Workspace,
    )

DEFAULT_NETWORK = "vpn"
"""The network this plugin owns. Networks are claimed when plugins load, before any configuration is read, so
the name is not a ``[pia]`` key; every other part of the plugin takes the name from the network record."""


@hookimpl
def ws_config_sections() -> dict[str, Any]:
    return {"pia": "ws_plugin_pia.settings:PiaSettings"}


@hookimpl
def ws_networks() -> list[str]:
    return [DEFAULT_NETWORK]


@hookimpl
def ws_network_define(name: str, core: Any, sections: Mapping[str, Any]) -> Network:
    from ws_plugin_pia import network

    return network.define(name, core, sections)


@hookimpl
def ws_network_up(network: Network, ctx: Context) -> list[str]:
    from ws_plugin_pia import network as vpn
    from ws_plugin_pia.settings import settings_of

    with ctx.lock("network", network.bridge):
        return vpn.up(settings_of(ctx), vpn.paths_of(ctx))


@hookimpl
def ws_network_down(network: Network, ctx: Context) -> list[str]:
    from ws_plugin_pia import network as vpn
    from ws_plugin_pia.settings import settings_of

    with ctx.lock("network", network.bridge):
        return vpn.down(settings_of(ctx), vpn.paths_of(ctx))


@hookimpl
def ws_network_status(network: Network, ctx: Context) -> NetworkStatus:
    from ws import agents
    from ws.api import NetworkStatus

    from ws_plugin_pia import network as vpn
    from ws_plugin_pia.settings import settings_of

    up, detail, extra = vpn.status(settings_of(ctx), vpn.paths_of(ctx), agents.running(network, ctx.state.root))
    return NetworkStatus(up=up, detail=detail, extra=extra)


@hookimpl
def ws_network_attach(network: Network, workspace: Workspace, ctx: Context) -> NetworkAttachment:
    """The network up (cheap when it is); a running workspace's port put back on a re-created bridge."""
    from ws.network import bridge

    ws_network_up(network, ctx)
    for change in bridge.reattach_port(network.bridge, workspace.host_interface):
        ctx.log.info("network change", bridge=network.bridge, change=change)
    return network.attachment()


@hookimpl
def ws_network_detach(network: Network, workspace: Workspace, ctx: Context) -> None:
    """Nothing is kept per workspace: the forwarded port's DNAT names an address, which stays reserved."""


@hookimpl
def ws_network_describe(network: Network, workspace: Workspace, ctx: Context) -> NetworkAttachment:
    return network.attachment()


@hookimpl
def ws_network_maintain(network: Network, ctx: Context, force: bool) -> MaintenanceResult:
    """The renewal (``ws vpn renew``): a new session when due or forced, swapped into the running tunnel."""
    from ws.api import MaintenanceResult

    from ws_plugin_pia import network as vpn
    from ws_plugin_pia.settings import settings_of

    settings = settings_of(ctx)
    result = vpn.converge(settings, vpn.paths_of(ctx), vpn.target_ip_of(settings, ctx.config.workspaces), force)
    renewal = result.renewal
    return MaintenanceResult(renewal.action, renewal.detail, renewal.next_due.timestamp())


@hookimpl
def ws_provision_files(workspace: Workspace, attachment: NetworkAttachment, ctx: Context) -> list[ProvisionFile]:
    if attachment.network not in ws_networks():
        return []
    from ws_plugin_pia.guest import wait_files
    from ws_plugin_pia.settings import settings_of

    return wait_files(settings_of(ctx).wait_for_name, attachment.gateway)


@hookimpl
def ws_register_commands(cli: click.Group) -> None:
    from ws_plugin_pia.cli import vpn

    cli.add_command(vpn)


@hookimpl
def ws_doctor_checks(ctx: Context) -> list[DoctorCheck]:
    from ws_plugin_pia import doctor

    return doctor.checks(ctx)
