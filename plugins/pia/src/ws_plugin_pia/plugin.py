"""The hook implementations of ws-plugin-pia (entry point ``pia`` in group ``ws``): a thin layer that only
forwards to the modules, so that contract v2 changes this file and nothing else.

Imported on every ``ws`` invocation: only ws's light modules here; click, pydantic, httpx and cryptography
are imported inside the hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ws import hookimpl

if TYPE_CHECKING:
    import click
    from ws.context import Context
    from ws.types import DoctorCheck


@hookimpl
def ws_config_sections() -> dict[str, Any]:
    return {"pia": "ws_plugin_pia.settings:PiaSettings"}


@hookimpl
def ws_register_commands(cli: click.Group) -> None:
    from ws_plugin_pia.cli import vpn

    cli.add_command(vpn)


@hookimpl
def ws_doctor_checks(ctx: Context) -> list[DoctorCheck]:
    from ws_plugin_pia import doctor

    return doctor.checks(ctx)
