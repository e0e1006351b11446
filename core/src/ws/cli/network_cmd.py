"""``ws network up|down|status [NAME...]``: the host side of ws's networks, by hand.

Each command dispatches by name to the plugin owning the network (core owns ``sandbox``). With no NAME:
every network a configured workspace uses, plus the sandbox. ``ws up`` brings networks up on its own;
these commands set the host up ahead of time, inspect it and remove everything ws created.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ws.cli.common import json_option, pass_ws_context, print_json

if TYPE_CHECKING:
    from ws.context import Context
    from ws.types import Network

names_argument = click.argument("names", nargs=-1, metavar="[NAME]...")


@click.group()
def network() -> None:
    """ws's networks (the sandbox, and those of plugins such as the VPN): up, down, status."""


def _selected(ctx: Context, names: tuple[str, ...]) -> list[Network]:
    """The named networks (and those they require), or every network in use plus the sandbox, in the order
    they come up."""
    from ws import operations
    from ws.errors import UsageError

    if names:
        unknown = [name for name in names if name not in ctx.registry.networks]
        if unknown:
            known = ", ".join(ctx.registry.networks)
            raise UsageError(f"no installed plugin owns network {unknown[0]!r} (networks: {known})")
        return operations.networks_in_order(ctx, list(names))
    return operations.networks_in_order(ctx, list(ctx.config.networks))


@network.command()
@names_argument
@json_option
@pass_ws_context
def up(ctx: Context, names: tuple[str, ...], as_json: bool) -> None:
    """Create or repair networks; changes nothing where a network is already up as configured."""
    results = [(net, ctx.network(net.name).up()) for net in _selected(ctx, names)]
    _report(results, as_json, done="is up", unchanged="is already up")


@network.command()
@names_argument
@json_option
@pass_ws_context
def down(ctx: Context, names: tuple[str, ...], as_json: bool) -> None:
    """Remove everything `ws network up` created (running workspaces on it lose their network).

    Networks go down in the reverse order they come up (a network before those it requires)."""
    results = [(net, ctx.network(net.name).down()) for net in reversed(_selected(ctx, names))]
    _report(results, as_json, done="is down", unchanged="was not up")


def _report(results: list[tuple[Network, list[str]]], as_json: bool, *, done: str, unchanged: str) -> None:
    if as_json:
        rows = [{"network": n.name, "bridge": n.bridge, "changes": c, "changed": bool(c)} for n, c in results]
        print_json(rows)
        return
    for net, changes in results:
        if changes:
            click.echo(f"{net.name} network on {net.bridge} {done} ({len(changes)} changes):")
            for change in changes:
                click.echo(f"  {change}")
        else:
            click.echo(f"{net.name} network on {net.bridge} {unchanged} (no changes)")


@network.command()
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--bridge", required=True)
def guard(state_dir: Path, bridge: str) -> None:
    """Keep ws's firewall in place: re-apply it within a second when the ruleset is flushed or changed.

    `ws network up` runs this under ws's process supervisor; it is not meant to be started by hand.
    """
    from ws.network.guard import main

    main(state_dir, bridge)


@network.command()
@names_argument
@json_option
@pass_ws_context
def status(ctx: Context, names: tuple[str, ...], as_json: bool) -> None:
    """Show each network's real state as the kernel reports it (exit status 1 if one is not up)."""
    reports = [(net, ctx.network(net.name).status()) for net in _selected(ctx, names)]
    if as_json:
        print_json([{"network": net.name, **dataclasses.asdict(report)} for net, report in reports])
    else:
        for net, report in reports:
            click.echo(f"{net.name} network: {'up' if report.up else 'NOT up (run: ws network up ' + net.name + ')'}")
            if report.detail:
                click.echo(f"  {report.detail}")
            if net.name == "sandbox":
                _sandbox_details(report.extra)
    if not all(report.up for _net, report in reports):
        click.get_current_context().exit(1)


def _sandbox_details(report: dict) -> None:
    br, fw, dns, upstream = report["bridge"], report["firewall"], report["dns"], report["upstream"]
    state = "absent" if not br["exists"] else f"{'up' if br['up'] else 'down'} {', '.join(br['addresses']) or '-'}"
    click.echo(f"  bridge     {br['name']}: {state} (expected {report['expected_address']})")
    click.echo(f"  forwarding {'on' if report['forwarding'] else 'off'}")
    table = f"{fw['rules']} rules{'' if fw['current'] else ', NOT current'}" if fw["present"] else "absent"
    click.echo(f"  firewall   {fw['table']} and bridge {fw['table'].split()[-1]}: {table}")
    click.echo(f"  guard      {'running' if fw['guard'] else 'NOT running'}")
    running = f"pid {dns['pid']}" if dns["running"] else "not running"
    click.echo(
        f"  dns        dnsmasq {running} on {dns['listen_address']}:53 -> {', '.join(dns['upstream_servers']) or '-'}"
    )
    click.echo(f"  upstream   {upstream['interface'] or upstream['error']} ({upstream['source']})")
