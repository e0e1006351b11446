"""``ws doctor``: every plugin's host checks in one report."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import click

from ws.cli.common import json_option, pass_ws_context, print_json
from ws.types import CheckStatus, DoctorCheck

if TYPE_CHECKING:
    from ws.context import Context

MARKS = {CheckStatus.OK: "ok  ", CheckStatus.WARN: "warn", CheckStatus.FAIL: "FAIL"}


@click.command()
@json_option
@pass_ws_context
def doctor(ctx: Context, as_json: bool) -> None:
    """Check the host for what ws and every loaded plugin need; exit status 1 if any check fails."""
    checks: list[DoctorCheck] = ctx.all_plugins.doctor_checks()
    if as_json:
        print_json([dataclasses.asdict(check) for check in checks])
    else:
        for check in checks:
            click.echo(f"[{MARKS[check.status]}] {check.name}: {check.detail}")
            if check.fix and check.status != CheckStatus.OK:
                click.echo(f"       fix: {check.fix}")
    if any(check.status == CheckStatus.FAIL for check in checks):
        click.get_current_context().exit(1)
