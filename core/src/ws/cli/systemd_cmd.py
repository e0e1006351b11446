"""``ws systemd install|uninstall|status``: the units that bring ws's networks and autostart workspaces up
at boot (docs/systemd.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ws.cli.common import json_option, pass_ws_context, print_json

if TYPE_CHECKING:
    from ws.context import Context


@click.group()
def systemd() -> None:
    """systemd units that start ws's networks and autostart workspaces at boot.

    Needs systemd as the init system (exit status 2 otherwise). The units run `ws` commands with the
    configuration file and login user of the installing command; `ws apply` keeps them current.
    """


@systemd.command()
@click.option("--no-start", is_flag=True, help="Only write and enable the units; they start at the next boot.")
@json_option
@pass_ws_context
def install(ctx: Context, no_start: bool, as_json: bool) -> None:
    """Write the units to /etc/systemd/system, enable and start them.

    One unit brings up the networks (again whenever nftables.service is reloaded or restarted), one per
    network agent (a VPN tunnel), one per autostart workspace. Starting a unit whose workspace is already
    up as configured changes nothing. Running it again rewrites what the configuration changed.
    """
    from ws.units import install as units

    result = units.install(ctx, start=not no_start)
    _report(result, as_json)


@systemd.command()
@json_option
@pass_ws_context
def uninstall(ctx: Context, as_json: bool) -> None:
    """Stop and remove ws's units (their workspaces go down; networks stay up), then reload systemd."""
    from ws.units import install as units

    result = units.uninstall(ctx)
    if as_json:
        print_json(result)
        return
    for name in result["removed"]:
        click.echo(f"unit {name}: removed")
    if not result["removed"]:
        click.echo("no ws units were installed")


@systemd.command()
@json_option
@pass_ws_context
def status(ctx: Context, as_json: bool) -> None:
    """Show each installed unit: present, current with the configuration, enabled, active (exit status 1
    if one is not)."""
    from ws.units import install as units

    rows = units.status(ctx)
    if as_json:
        print_json(rows)
    elif not rows:
        click.echo("no ws units are installed (ws systemd install)")
    for row in rows if not as_json else ():
        current = "current" if row["current"] else ("OUT OF DATE (ws apply)" if row["present"] else "MISSING")
        click.echo(f"{row['unit']:<40} {current:<24} {row['enabled']:<10} {row['active']}")
    if any(not (r["current"] and r["enabled"] == "enabled" and r["active"] == "active") for r in rows):
        click.get_current_context().exit(1)


def _report(result: dict, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    for name in result["written"]:
        click.echo(f"unit {name}: written")
    for name in result["removed"]:
        click.echo(f"unit {name}: removed")
    for name in result["started"]:
        click.echo(f"unit {name}: active")
    if not result["units"]:
        click.echo("no workspace is marked autostart: there is nothing to start at boot, no units are installed")
    elif not (result["written"] or result["removed"] or result["started"]):
        click.echo("units are current")
