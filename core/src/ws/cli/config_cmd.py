"""``ws config check|show``: validate the configuration and show what ws derived from it."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import click

from ws.cli.common import json_option, pass_ws_context, print_json

if TYPE_CHECKING:
    from ws.context import Context

IDENTITY_FIELDS = ("type", "ip", "mac", "cid", "hostname", "host_interface", "instance_name", "network", "image")


@click.group()
def config() -> None:
    """Check or show the configuration (--config, else $WS_CONFIG, else /etc/ws/ws.toml, else the
    embedded default)."""


@config.command()
@json_option
@pass_ws_context
def check(ctx: Context, as_json: bool) -> None:
    """Validate the configuration; report every error with file and key path (exit status 2)."""
    count = len(ctx.config.workspaces)
    if as_json:
        print_json({"source": ctx.config.source, "valid": True, "workspaces": count})
    else:
        click.echo(f"{ctx.config.source}: ok ({count} workspace{'s' if count != 1 else ''})")


@config.command()
@json_option
@pass_ws_context
def show(ctx: Context, as_json: bool) -> None:
    """Show the source, the effective settings and every workspace's derived identities."""
    data = describe(ctx)
    if as_json:
        print_json(data)
        return
    click.echo(f"source: {data['source']}")
    click.echo(f"state_dir: {data['state_dir']}")
    network = data["network"]
    click.echo(f"network: {network['bridge']} {network['subnet']} (host {network['host_address']})")
    for name, workspace in data["workspaces"].items():
        click.echo(f"workspace {name}:")
        for key in IDENTITY_FIELDS:
            if workspace.get(key) is not None:
                click.echo(f"  {key:<15} {workspace[key]}")


def describe(ctx: Context) -> dict[str, Any]:
    core = ctx.config.core
    network = core.network.model_dump(mode="json")
    network["host_address"] = str(core.network.gateway)
    return {
        "source": ctx.config.source,
        "state_dir": str(core.state_dir),
        "network": network,
        "user": core.user.model_dump(mode="json"),
        "nix": core.nix.model_dump(mode="json"),
        "agent": core.agent.model_dump(mode="json"),
        "images": core.images.model_dump(mode="json"),
        "sections": {name: model.model_dump(mode="json") for name, model in ctx.config.sections.items()},
        "workspaces": {
            name: dataclasses.asdict(workspace) for name, workspace in sorted(ctx.config.workspaces.items())
        },
    }
