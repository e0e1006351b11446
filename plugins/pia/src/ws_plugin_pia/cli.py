"""``ws vpn``: PIA's regions, the session's status, renewal. Secrets never reach the output."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from ws.cli.common import json_option, pass_ws_context, print_json

if TYPE_CHECKING:
    from ws.context import Context


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
@json_option
@pass_ws_context
def status(ctx: Context, as_json: bool) -> None:
    """Show the PIA session ws holds: region, server, public key, peer address, token age, forwarded port.

    Read from ws's state only (no request to PIA); the token and keys' private halves are never shown.
    """
    from ws_plugin_pia.settings import settings_of
    from ws_plugin_pia.status import age, report
    from ws_plugin_pia.store import PiaPaths

    data = report(settings_of(ctx), PiaPaths.under(ctx.state.root))
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
    click.echo(f"tunnel:      {data['tunnel']}")


@vpn.command()
@click.option("--force", is_flag=True, help="Make a new session even if the current one is still fresh.")
@json_option
@pass_ws_context
def renew(ctx: Context, force: bool, as_json: bool) -> None:
    """Renew the PIA session when it is missing, a month old or for another region (--force: now), and keep
    the port forwarded.

    With port forwarding, the stored signature is reused while more than 7 days remain and the port is
    bound again.
    """
    from ws_plugin_pia.renewal import renew as renew_session
    from ws_plugin_pia.settings import settings_of
    from ws_plugin_pia.store import PiaPaths

    # Until contract v2's ws_network_maintain exists (part 2 owns the VPN network), the command calls the
    # renewal function directly; then it will go through the network's maintain hook.
    result = renew_session(settings_of(ctx), PiaPaths.under(ctx.state.root), force)
    if as_json:
        print_json(result)
    else:
        click.echo(f"{result.action}: {result.detail}; next due {result.next_due:%Y-%m-%d %H:%M} UTC")
