"""The ``sandbox`` network's hooks: core registers this module like any third-party network plugin.

The network is defined by ``[network]``: a bridge with the host's address, NAT out of the upstream
interface, firewall tables that keep guests off the LAN, the host's services and each other (restored by a
guard within a second of a flush), and a DNS forwarder (docs/network.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ws import hookimpl

if TYPE_CHECKING:
    from ws.api import Context, Network, NetworkAttachment, NetworkStatus, Workspace

SANDBOX = "sandbox"


@hookimpl
def ws_networks() -> list[str]:
    return [SANDBOX]


@hookimpl
def ws_network_define(name: str, core: Any, sections: Mapping[str, Any]) -> Network:
    from ws.types import Network

    settings = core.network
    host = str(settings.gateway)
    return Network(
        name=name,
        bridge=settings.bridge,
        subnet=str(settings.subnet),
        host_address=host,
        gateway=host,
        dns=(host,),
        masquerade=True,
    )


@hookimpl
def ws_network_up(network: Network, ctx: Context) -> list[str]:
    return ensure_sandbox(ctx)


@hookimpl
def ws_network_down(network: Network, ctx: Context) -> list[str]:
    from ws.network import hostfiles, sandbox

    settings = ctx.config.core.network
    with ctx.lock("network", settings.bridge):
        changes = sandbox.down(settings, ctx.state.root, ctx.log)
        owner = str(ctx.state.root)
        return changes + hostfiles.remove_host_files(owner, known_hosts=hostfiles.known_hosts_path(ctx.state.root))


@hookimpl
def ws_network_status(network: Network, ctx: Context) -> NetworkStatus:
    from ws.network import sandbox
    from ws.types import NetworkStatus

    ports = sandbox.port_bindings(ctx.config.workspaces.values())
    report = sandbox.status(ctx.config.core.network, ctx.state.root, ports)
    detail = f"bridge {network.bridge}, {network.subnet}, NAT out of {report['upstream']['interface'] or '?'}"
    return NetworkStatus(up=report["up"], detail=detail, extra=report)


@hookimpl
def ws_network_attach(network: Network, workspace: Workspace, ctx: Context) -> NetworkAttachment:
    """Bring the sandbox network up if this command has not made sure of it yet (``ws up`` brings networks
    up before its workspaces), so attaching alone suffices; the host files are written again either way, as
    the workspace's host key may be new since (``ws up`` makes it just before attaching)."""
    ensure_sandbox(ctx, network_checked=_done_key(ctx) in ctx.done)
    return network.attachment()


@hookimpl
def ws_network_describe(network: Network, workspace: Workspace, ctx: Context) -> NetworkAttachment:
    return network.attachment()


def ensure_sandbox(ctx: Context, network_checked: bool = False) -> list[str]:
    """Create or repair the sandbox network (unless ``network_checked``: this command did a moment ago) and
    the host files naming the workspaces; return the changes."""
    from ws.network import hostfiles, sandbox

    settings = ctx.config.core.network
    with ctx.lock("network", settings.bridge):
        changes = []
        if not network_checked:
            unmanaged = {f"{wtype.interface_prefix}*" for wtype in ctx.registry.types.values()}
            ports = sandbox.port_bindings(ctx.config.workspaces.values())
            changes = list(
                sandbox.ensure_up(settings, ctx.state.root, ctx.log, unmanaged=unmanaged, ports=ports).changes
            )
        entries = hostfiles.entries_for(ctx.config.workspaces.values())
        known_hosts = hostfiles.known_hosts_path(ctx.state.root)
        changes = [*changes, *hostfiles.sync_host_files(entries, str(ctx.state.root), known_hosts=known_hosts)]
    ctx.done.add(_done_key(ctx))
    return changes


def _done_key(ctx: Context) -> str:
    return f"sandbox up: {ctx.config.core.network.bridge}"
