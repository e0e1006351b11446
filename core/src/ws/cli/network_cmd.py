"""``ws network up|down|status``: the host side of the sandbox network, by hand.

``ws up`` brings the network up on its own; these commands are for setting the host up ahead of time,
inspecting it and removing everything ws created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ws.cli.common import json_option, pass_ws_context, print_json

if TYPE_CHECKING:
    from ws.context import Context


@click.group()
def network() -> None:
    """The sandbox network: bridge, NAT and firewall table, DNS forwarder, host files."""


@network.command()
@json_option
@pass_ws_context
def up(ctx: Context, as_json: bool) -> None:
    """Create or repair the sandbox network; changes nothing when it is already up as configured."""
    from ws.builtin import ensure_sandbox

    changes = ensure_sandbox(ctx)
    _report(ctx, changes, as_json, done="is up", unchanged="is already up")


@network.command()
@json_option
@pass_ws_context
def down(ctx: Context, as_json: bool) -> None:
    """Remove everything `ws network up` created (running workspaces lose their network)."""
    from ws.builtin import known_hosts_file
    from ws.network import hostfiles, sandbox

    net = ctx.config.core.network
    with ctx.lock("network", net.bridge):
        changes = sandbox.down(net, ctx.state.root, ctx.log)
        changes += hostfiles.remove_host_files(str(ctx.state.root), known_hosts=known_hosts_file(ctx))
    _report(ctx, changes, as_json, done="is down", unchanged="was not up")


def _report(ctx: Context, changes: list[str], as_json: bool, *, done: str, unchanged: str) -> None:
    bridge = ctx.config.core.network.bridge
    if as_json:
        print_json({"bridge": bridge, "changes": changes, "changed": bool(changes)})
    elif changes:
        click.echo(f"sandbox network on {bridge} {done} ({len(changes)} changes):")
        for change in changes:
            click.echo(f"  {change}")
    else:
        click.echo(f"sandbox network on {bridge} {unchanged} (no changes)")


@network.command()
@json_option
@pass_ws_context
def status(ctx: Context, as_json: bool) -> None:
    """Show the bridge, forwarding, firewall table, DNS forwarder and upstream as the kernel reports them."""
    from ws.network import sandbox

    report = sandbox.status(ctx.config.core.network, ctx.state.root)
    if as_json:
        print_json(report)
        return
    br, fw, dns, upstream = report["bridge"], report["firewall"], report["dns"], report["upstream"]
    click.echo(f"sandbox network: {'up' if report['up'] else 'NOT up (run: ws network up)'}")
    state = "absent" if not br["exists"] else f"{'up' if br['up'] else 'down'} {', '.join(br['addresses']) or '-'}"
    click.echo(f"  bridge     {br['name']}: {state} (expected {report['expected_address']})")
    click.echo(f"  forwarding {'on' if report['forwarding'] else 'off'}")
    table = f"{fw['rules']} rules{'' if fw['current'] else ', NOT current'}" if fw["present"] else "absent"
    click.echo(f"  firewall   {fw['table']}: {table}")
    running = f"pid {dns['pid']}" if dns["running"] else "not running"
    click.echo(
        f"  dns        dnsmasq {running} on {dns['listen_address']}:53 -> {', '.join(dns['upstream_servers']) or '-'}"
    )
    click.echo(f"  upstream   {upstream['interface'] or upstream['error']} ({upstream['source']})")
