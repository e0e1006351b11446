"""``ws apply``: bring the host to the configuration (networks, autostart workspaces, changed ones)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ws.cli.common import json_option, pass_ws_context, print_json

if TYPE_CHECKING:
    from ws.context import Context
    from ws.reconcile import ApplyPlan

WHAT = {
    "create": "would be created",
    "recreate": "would be re-created",
    "unchanged": "unchanged",
    "leave": "left as it is",
    "stop": "would be stopped",
    "orphan": "listed only (ws apply --prune stops it)",
}


@click.command()
@click.option("--dry-run", is_flag=True, help="Only print the plan, with the reason for each action.")
@click.option("--prune", is_flag=True, help="Also stop workspaces ws created that are no longer configured.")
@json_option
@pass_ws_context
def apply(ctx: Context, dry_run: bool, prune: bool, as_json: bool) -> None:
    """Make the host match the configuration, like `nixos-rebuild switch`.

    Brings up the networks in use, then the workspaces marked autostart; re-creates running workspaces
    whose configuration changed (anything that reaches the guest, as for `ws up`); leaves unchanged ones
    alone and stopped ones that are not autostart stopped. Workspaces ws created that are no longer in the
    configuration are listed, and stopped with --prune (their host folders stay). Installed systemd units
    (`ws systemd install`) are rewritten when the configuration changed them.
    """
    from ws import reconcile
    from ws.cli.workspace_cmd import in_parallel

    if dry_run:
        the_plan = reconcile.plan(ctx, prune=prune)
        units = _refresh_units(ctx, dry_run=True)
        if as_json:
            print_json({**the_plan.to_json(), "units": units})
        else:
            _print_plan(the_plan, units)
        return
    outcome = reconcile.apply(ctx, in_parallel, prune=prune)
    units = _refresh_units(ctx, dry_run=False)
    changed = outcome.changed or bool(units and (units["written"] or units["removed"]))
    if as_json:
        done = [{"name": name, "action": action, "state": state} for name, action, state in outcome.results]
        networks = [{"name": name, "changes": list(changes)} for name, changes in outcome.network_changes]
        print_json(
            {**outcome.plan.to_json(), "done": done, "network_changes": networks, "units": units, "changed": changed}
        )
        return
    for name, changes in outcome.network_changes:
        click.echo(f"network {name}: {'; '.join(changes) if changes else 'up (no changes)'}")
    for name, action, state in outcome.results:
        click.echo(f"{name}: {action}, {state}")
    for step in outcome.plan.workspaces:
        if step.action in ("leave", "orphan"):
            click.echo(f"{step.name}: {WHAT[step.action]} ({', '.join(step.reasons)}; {step.state})")
    _print_units(units)
    if not changed:
        click.echo("nothing changed: the host already matched the configuration")


def _print_plan(the_plan: ApplyPlan, units: dict | None) -> None:
    for network in the_plan.networks:
        if network.action == "up":
            click.echo(f"network {network.name}: would be brought up ({network.reason})")
        else:
            click.echo(f"network {network.name}: up, unchanged")
    for step in the_plan.workspaces:
        why = ", ".join(reason for reason in step.reasons if reason)
        click.echo(f"{step.name}: {WHAT[step.action]}" + (f" ({why})" if why else ""))
    _print_units(units, would=True)


def _refresh_units(ctx: Context, *, dry_run: bool) -> dict | None:
    """The installed systemd units brought up to date with the configuration (None: none installed)."""
    from ws.units import install

    return install.refresh(ctx, dry_run=dry_run)


def _print_units(units: dict | None, would: bool = False) -> None:
    if units is None or not (units["written"] or units["removed"]):
        return
    verb = "would be " if would else ""
    for name in units["written"]:
        click.echo(f"unit {name}: {verb}rewritten")
    for name in units["removed"]:
        click.echo(f"unit {name}: {verb}removed")
