"""Lifecycle commands: up, down, start, stop, restart, destroy, list, status."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ws.cli.common import CliState, json_option, pass_ws_context, print_json, workspace_names

if TYPE_CHECKING:
    from ws.context import Context
    from ws.types import Workspace

names_argument = click.argument("names", nargs=-1, shell_complete=workspace_names)
name_argument = click.argument("name", shell_complete=workspace_names)


def _selected(ctx: Context, names: tuple[str, ...], default_autostart: bool) -> list[Workspace]:
    """Named workspaces, or with no names: the autostart ones (all, when none is marked) for ``up``,
    every workspace for ``down``."""
    if names:
        return [ctx.workspace(name) for name in dict.fromkeys(names)]
    workspaces = list(ctx.config.workspaces.values())
    if not workspaces:
        from ws.errors import PluginMissingError, UsageError

        if not ctx.registry.types:
            from ws.hints import no_backend_hint

            raise PluginMissingError(no_backend_hint())
        raise UsageError(f"no workspaces are configured in {ctx.config.source}")
    autostart = [w for w in workspaces if w.autostart]
    return autostart if default_autostart and autostart else workspaces


def in_parallel(function, workspaces: list[Workspace]) -> list:
    """Independent workspaces proceed at once (each holds only its own lock); the first error is raised
    after all have finished, so no operation is abandoned half-way."""
    from concurrent.futures import ThreadPoolExecutor  # not at the top: ws list and status do without it

    if len(workspaces) == 1:
        return [function(workspaces[0])]
    with ThreadPoolExecutor(max_workers=min(8, len(workspaces))) as pool:
        futures = [pool.submit(function, w) for w in workspaces]
    errors = [f.exception() for f in futures if f.exception() is not None]
    for workspace, future in zip(workspaces, futures, strict=True):
        if future.exception() is not None:
            click.echo(f"ws: {workspace.name}: {future.exception()}", err=True)
    if errors:
        raise errors[0]
    return [f.result() for f in futures]


def _up_one(ctx: Context, workspace: Workspace, force: bool):
    """``start``/``restart`` of one workspace: its network first, like ``up``."""
    from ws import operations

    operations.bring_networks_up(ctx, [workspace])
    return operations.up(ctx, workspace, force=force)


def _report_up(results: list, as_json: bool) -> None:
    if as_json:
        print_json([{"name": r.name, "action": r.action, **_status_dict(r.status)} for r in results])
        return
    for result in results:
        why = f" ({', '.join(result.changed)} changed)" if result.changed and result.changed != ("forced",) else ""
        click.echo(f"{result.name}: {result.action}{why}, {result.status.state} {result.status.ip or ''}".rstrip())


def _status_dict(status) -> dict:
    import dataclasses

    return dataclasses.asdict(status)


@click.command()
@names_argument
@click.option("--recreate", is_flag=True, help="Re-create running workspaces even if unchanged.")
@click.option("--dry-run", is_flag=True, help="Only say what would happen to each workspace, and why.")
@json_option
@pass_ws_context
def up(ctx: Context, names: tuple[str, ...], recreate: bool, dry_run: bool, as_json: bool) -> None:
    """Bring workspaces up: their networks first, then the workspaces, created and started.

    With no NAME, brings up the workspaces marked autostart (all of them when none is). A running
    workspace whose configuration is unchanged is left alone (its network is still repaired if needed);
    a changed one is re-created: anything that reaches the guest counts (its settings, backend options,
    authorized keys and other provisioned files, network attachment, image content). --dry-run says
    which of these changed.
    """
    from ws import operations

    workspaces = _selected(ctx, names, default_autostart=True)
    if dry_run:
        _report_plans([operations.plan(ctx, w, force=recreate) for w in workspaces], as_json)
        return
    for network, changes in operations.bring_networks_up(ctx, workspaces):
        for change in changes:
            ctx.progress(f"network {network}: {change}")
    results = in_parallel(lambda w: operations.up(ctx, w, force=recreate), workspaces)
    _report_up(results, as_json)


def _report_plans(plans: list, as_json: bool) -> None:
    if as_json:
        print_json([{"name": p.name, "action": p.action, "reasons": list(p.reasons), "state": p.state} for p in plans])
        return
    for item in plans:
        what = {"create": "would be created", "recreate": "would be re-created", "unchanged": "unchanged"}[item.action]
        why = f" ({', '.join(item.reasons)})" if item.reasons else ""
        click.echo(f"{item.name}: {what}{why}")


@click.command()
@names_argument
@json_option
@pass_ws_context
def down(ctx: Context, names: tuple[str, ...], as_json: bool) -> None:
    """Stop workspaces (all of them with no NAME). Their host folders stay."""
    from ws import operations

    workspaces = _selected(ctx, names, default_autostart=False)
    statuses = in_parallel(lambda w: operations.down(ctx, w), workspaces)
    _report_states(workspaces, statuses, as_json)


def _report_states(workspaces: list[Workspace], statuses: list, as_json: bool) -> None:
    if as_json:
        print_json([{"name": w.name, **_status_dict(s)} for w, s in zip(workspaces, statuses, strict=True)])
    else:
        for workspace, state in zip(workspaces, statuses, strict=True):
            click.echo(f"{workspace.name}: {state.state}")


@click.command()
@name_argument
@json_option
@pass_ws_context
def start(ctx: Context, name: str, as_json: bool) -> None:
    """Start one workspace (the same as `ws up NAME`)."""

    _report_up([_up_one(ctx, ctx.workspace(name), force=False)], as_json)


@click.command()
@name_argument
@json_option
@pass_ws_context
def stop(ctx: Context, name: str, as_json: bool) -> None:
    """Stop one workspace (the same as `ws down NAME`)."""
    from ws import operations

    workspace = ctx.workspace(name)
    _report_states([workspace], [operations.down(ctx, workspace)], as_json)


@click.command()
@name_argument
@json_option
@pass_ws_context
def restart(ctx: Context, name: str, as_json: bool) -> None:
    """Re-create and start one workspace from its current image."""

    _report_up([_up_one(ctx, ctx.workspace(name), force=True)], as_json)


@click.command()
@name_argument
@click.option("--purge", is_flag=True, help="Also delete the workspace's host folders (work folder, host keys).")
@click.option("--yes", is_flag=True, help="Do not ask before --purge deletes the work folder.")
@pass_ws_context
def destroy(ctx: Context, name: str, purge: bool, yes: bool) -> None:
    """Remove the workspace's instance and ws's images of it. With --purge, also its host folders."""
    from ws import operations

    workspace = ctx.workspace(name)
    if purge and not yes:
        click.confirm(f"Delete {workspace.paths.root} including the work folder?", abort=True, err=True)
    operations.destroy(ctx, workspace, purge=purge)
    click.echo(f"{name}: destroyed{' and purged' if purge else ''}")


@click.command("list")
@json_option
def list_workspaces(as_json: bool) -> None:
    """List the configured workspaces with type, address and the backend's view of their state."""
    overview = _overview()
    workspaces = sorted(overview.workspaces.values(), key=lambda w: w.name)
    rows = []
    for workspace, answer in zip(workspaces, overview.statuses(workspaces, brief=True), strict=True):
        failed = isinstance(answer, Exception)
        rows.append(
            {
                "name": workspace.name,
                "type": workspace.type,
                "ip": workspace.ip,
                "network": workspace.network,
                "state": "error" if failed else answer.state.value,
                "detail": str(answer) if failed else "",
            }
        )
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(f"no workspaces configured in {overview.source}")
    for row in rows:
        click.echo(f"{row['name']:<16} {row['type']:<10} {row['ip']:<16} {row['state']}")


@click.command()
@name_argument
@json_option
def status(name: str, as_json: bool) -> None:
    """Show one workspace's state as its backend reports it, with its identities."""
    overview = _overview()
    workspace = overview.workspace(name)
    result = overview.statuses([workspace], brief=False)[0]
    if isinstance(result, Exception):
        raise result
    if as_json:
        print_json(
            {
                "name": name,
                "type": workspace.type,
                "hostname": workspace.hostname,
                "mac": workspace.mac,
                **_status_dict(result),
                "ip": result.ip or workspace.ip,
            }
        )
        return
    click.echo(f"{name}: {result.state}")
    click.echo(f"  type      {workspace.type}")
    click.echo(f"  address   {result.ip or workspace.ip} ({workspace.hostname})")
    if result.image:
        click.echo(f"  image     {result.image}")
    if result.detail:
        click.echo(f"  detail    {result.detail}")


def _overview():
    """list and status read the configuration's snapshot when it is valid (see :mod:`ws.overview`)."""
    state = click.get_current_context().find_object(CliState) or CliState()
    return state.overview()
