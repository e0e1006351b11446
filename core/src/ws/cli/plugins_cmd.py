"""``ws plugins``: what is loaded, what each plugin provides, and what failed to load."""

from __future__ import annotations

import dataclasses

import click

from ws.cli.common import CliState, json_option, print_json


@click.command()
@json_option
@click.pass_obj
def plugins(state: CliState, as_json: bool) -> None:
    """List every loaded plugin (name, distribution, version, types, hooks) and the ones that failed.

    Works even when the configuration is invalid, so a broken setup can be inspected.
    """
    manager = state.plugins().registry
    if as_json:
        print_json(
            {
                "plugins": [dataclasses.asdict(info) for info in manager.loaded],
                "failed": [dataclasses.asdict(info) for info in manager.failed],
            }
        )
        return
    for info in manager.loaded:
        provides = ", ".join(
            [f"type {t}" for t in info.types]
            + [f"network {n}" for n in info.networks]
            + [f"[{s}]" for s in info.sections]
        )
        click.echo(f"{info.name} ({info.distribution} {info.version}){': ' + provides if provides else ''}")
        click.echo(f"    hooks: {', '.join(info.hooks) or '-'}")
    for info in manager.failed:
        click.echo(f"{info.name} ({info.distribution} {info.version}): FAILED: {info.error}")
