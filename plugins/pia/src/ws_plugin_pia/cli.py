"""``ws vpn``: PIA's regions, the session's status, renewal. Secrets never reach the output."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from ws.cli.common import json_option, pass_ws_context, print_json

if TYPE_CHECKING:
    from ws.context import Context


network_argument = click.argument("network_name", metavar="[NETWORK]", default="vpn")
"""The network this plugin owns (``vpn``); every command that acts on it takes its name."""


def owned_network(network_name: str) -> str:
    """``network_name`` if ws-plugin-pia owns it, else a usage error (exit 2) naming the one it does."""
    from ws.errors import UsageError

    from ws_plugin_pia.plugin import ws_networks

    owned = ws_networks()
    if network_name not in owned:
        raise UsageError(f"ws-plugin-pia owns the network {', '.join(owned)}, not {network_name!r}")
    return network_name


@click.group()
def vpn() -> None:
    """PIA VPN: regions, session status, renewal (configured in [pia], see docs/vpn.md)."""


@vpn.command()
@json_option
@pass_ws_context
def regions(ctx: Context, as_json: bool) -> None:
    """List PIA's regions with port forwarding and the latency of their meta server (fastest first).

    Offline regions are listed without latency; a region whose meta server does not accept a TCP
    connection on 443 within pia.latency_timeout shows no latency and is not a candidate for auto.
    """
    from ws_plugin_pia import regions as choice
    from ws_plugin_pia import serverlist
    from ws_plugin_pia.settings import settings_of
    from ws_plugin_pia.transport import PiaHttp

    settings = settings_of(ctx)
    with PiaHttp.from_settings(settings) as http:
        servers = serverlist.fetch(http, settings)
    online = [region for region in servers.regions if not region.offline]
    latencies = choice.measure(online, choice.tcp_probe(settings.latency_timeout))
    rows = [
        {
            "id": region.id,
            "name": region.name,
            "country": region.country,
            "port_forward": region.port_forward,
            "geo": region.geo,
            "offline": region.offline,
            "latency_ms": None if latencies.get(region.id) is None else round(latencies[region.id] * 1000, 1),
        }
        for region in servers.regions
    ]
    rows.sort(key=lambda row: (row["latency_ms"] is None, row["latency_ms"] or 0, row["id"]))
    if as_json:
        print_json(rows)
        return
    click.echo(f"{'ID':<20} {'NAME':<28} {'PF':<4} {'GEO':<4} LATENCY")
    for row in rows:
        latency = "offline" if row["offline"] else "-" if row["latency_ms"] is None else f"{row['latency_ms']} ms"
        pf, geo = ("yes" if row["port_forward"] else "no"), ("yes" if row["geo"] else "no")
        click.echo(f"{row['id']:<20} {row['name']:<28} {pf:<4} {geo:<4} {latency}")
    if not servers.signed:
        click.echo("note: the list's signature was not checked (pia.serverlist_pubkey_file is not set)", err=True)


@vpn.command()
@network_argument
@json_option
@pass_ws_context
def status(ctx: Context, network_name: str, as_json: bool) -> None:
    """Show the PIA session ws holds: region, server, public key, peer address, token age, forwarded port,
    and whether the network's agent (ws-agent-NETWORK) runs.

    Read from ws's state and the supervisor only (no request to PIA); the token and keys' private halves are
    never shown.
    """
    from ws import agents

    from ws_plugin_pia.settings import settings_of
    from ws_plugin_pia.status import age, report
    from ws_plugin_pia.store import PiaPaths

    settings = settings_of(ctx)
    network = ctx.network_record(owned_network(network_name))
    data = report(settings, PiaPaths.under(ctx.state.root))
    data["network"] = network.name
    data["agent_running"] = agents.running(network, ctx.state.root)
    if as_json:
        print_json(data)
        return
    if data["region"] is None:
        click.echo("no PIA session yet (ws vpn renew makes one)")
    else:
        click.echo(f"region:      {data['region']}")
        click.echo(f"server:      {data['server']} ({data['server_ip']}:{data['server_port']})")
        click.echo(f"public key:  {data['public_key']}")
        click.echo(f"peer ip:     {data['peer_ip']}")
        click.echo(f"dns:         {', '.join(data['dns_servers'])}")
        click.echo(f"session age: {age(data['session_age_seconds'])}")
    click.echo(f"token:       {data['token'] or '-'} (age {age(data['token_age_seconds'])})")
    if data["port_forward"]:
        port, expires, bound = (data[key] or "-" for key in ("forwarded_port", "port_expires_at", "port_bound_at"))
        click.echo(f"forwarded:   {port} (expires {expires}, bound {bound})")
    agent = data["tunnel"] or {}
    running = f"ws-agent-{network.name} {'running' if data['agent_running'] else 'not running'}"
    if not agent:
        click.echo(f"tunnel:      {running}; it never reported (ws network up {network.name} starts it)")
    else:
        age = agent.get("handshake_age")
        handshake = "never" if age is None else f"{age:.0f} s ago"
        last = f"last report {agent.get('state')} at {agent.get('at')}, handshake {handshake}"
        click.echo(f"tunnel:      {running}; {last}")
        if agent.get("last_error"):
            click.echo(f"last error:  {agent['last_error']} (at {agent.get('last_error_at')})")


@vpn.command()
@click.option("--force", is_flag=True, help="Make a new session even if the current one is still fresh.")
@click.option(
    "--no-tunnel",
    is_flag=True,
    help="Only talk to PIA's API from the host (session, signature, bindPort); leave the tunnel alone. For "
    "diagnosing the API: bindPort then needs the server's VIP reachable from the host.",
)
@network_argument
@json_option
@pass_ws_context
def renew(ctx: Context, network_name: str, force: bool, no_tunnel: bool, as_json: bool) -> None:
    """Renew the PIA session when it is missing, due (pia.renew_days) or for another region (--force: now),
    swap it into the running tunnel in place, and keep the port forwarded.

    Service workspaces are not restarted: they keep their addresses and routes (the endpoint's). With port
    forwarding, the stored signature is reused while more than 7 days remain and the port is bound again.
    """
    from datetime import UTC, datetime

    from ws.api import MaintenanceResult

    owned_network(network_name)
    if no_tunnel:
        from ws_plugin_pia.network import paths_of
        from ws_plugin_pia.renewal import renew as renew_session
        from ws_plugin_pia.settings import settings_of

        renewed = renew_session(settings_of(ctx), paths_of(ctx), force)
        result = MaintenanceResult(renewed.action, renewed.detail, renewed.next_due.timestamp())
    else:
        result = ctx.network(network_name).maintain(force)
    if as_json:
        print_json(result)
    else:
        due = datetime.fromtimestamp(result.next_due, UTC) if result.next_due else None
        click.echo(f"{result.action}: {result.detail}" + (f"; next due {due:%Y-%m-%d %H:%M} UTC" if due else ""))


@vpn.command()
@network_argument
@pass_ws_context
def run(ctx: Context, network_name: str) -> None:
    """Run the network's agent in the foreground: what `ws network up NETWORK` starts as ws-agent-NETWORK (a
    Type=notify unit with a watchdog where systemd is PID 1, a detached process elsewhere), and what the unit
    of `ws systemd install` runs.

    Connects, configures the tunnel, then every pia.health_interval seconds: repairs the topology, checks the
    handshake (reconnects after pia.health_failures checks older than pia.handshake_timeout), renews when due
    and keeps the forwarded port bound. Under systemd (Type=notify) it sends READY=1 after its first round and
    WATCHDOG=1 after every round and every half watchdog interval while it waits; failures back off in steps
    up to 5 minutes. Stops on SIGTERM.
    """
    from ws_plugin_pia import network
    from ws_plugin_pia.agent import Agent
    from ws_plugin_pia.settings import settings_of

    owned_network(network_name)
    settings = settings_of(ctx)
    target = network.target_ip_of(settings, ctx.config.workspaces)
    raise SystemExit(Agent(settings, network.paths_of(ctx), target, ctx.log).run())


@vpn.command()
@network_argument
@click.option("--workspace", "workspace_name", help="Also check from inside this service workspace.")
@json_option
@pass_ws_context
def verify(ctx: Context, network_name: str, workspace_name: str | None, as_json: bool) -> None:
    """Check that the VPN is leak-proof, from the VPN endpoint (and a service workspace with --workspace).

    The exit address through the tunnel differs from the host's; DNS is answered through the tunnel; IPv6 is
    blocked; with the tunnel interface down nothing gets out. Exit status 1 when a check fails.
    """
    from ws_plugin_pia import verify as checks
    from ws_plugin_pia.settings import settings_of

    owned_network(network_name)
    results = checks.run(ctx, settings_of(ctx), workspace_name)
    if as_json:
        print_json([result.__dict__ for result in results])
    else:
        for result in results:
            click.echo(f"{'ok  ' if result.ok else 'FAIL'} {result.name}: {result.detail}")
    if not all(result.ok for result in results):
        raise SystemExit(1)
