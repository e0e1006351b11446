"""The ``ws`` group: global options, lazy plugin commands, and errors turned into exit statuses.

Exit statuses: 0 success, 1 operation failed, 2 usage or configuration error, 3 needed plugin missing.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from ws import __version__
from ws.cli.common import CliState

CORE_COMMANDS = {
    "apply": "ws.cli.apply_cmd:apply",
    "up": "ws.cli.workspace_cmd:up",
    "down": "ws.cli.workspace_cmd:down",
    "start": "ws.cli.workspace_cmd:start",
    "stop": "ws.cli.workspace_cmd:stop",
    "restart": "ws.cli.workspace_cmd:restart",
    "destroy": "ws.cli.workspace_cmd:destroy",
    "list": "ws.cli.workspace_cmd:list_workspaces",
    "status": "ws.cli.workspace_cmd:status",
    "exec": "ws.cli.access_cmd:exec_command",
    "ssh": "ws.cli.access_cmd:ssh",
    "logs": "ws.cli.access_cmd:logs",
    "config": "ws.cli.config_cmd:config",
    "plugins": "ws.cli.plugins_cmd:plugins",
    "doctor": "ws.cli.doctor_cmd:doctor",
    "network": "ws.cli.network_cmd:network",
    "image": "ws.cli.image_cmd:image",
    "provision": "ws.cli.provision_cmd:provision",
    "systemd": "ws.cli.systemd_cmd:systemd",
}
"""Core commands, imported only when used so ``ws --help`` stays fast."""

CORE_HELP = {
    "apply": "Make the host match the configuration (networks, autostart, changes).",
    "up": "Bring workspaces up (create and start them).",
    "down": "Stop workspaces; their host folders stay.",
    "start": "Start one workspace (same as up NAME).",
    "stop": "Stop one workspace (same as down NAME).",
    "restart": "Re-create and start one workspace.",
    "destroy": "Remove a workspace's instance and images (--purge: its folders too).",
    "list": "List the configured workspaces and their state.",
    "status": "Show one workspace's real state.",
    "exec": "Run a command in a workspace.",
    "ssh": "Open an SSH session to a workspace.",
    "logs": "Show a workspace's console or journal log.",
    "config": "Check or show the configuration.",
    "plugins": "List the loaded plugins.",
    "doctor": "Check the host for what ws and its plugins need.",
    "network": "Bring the sandbox network up or down, or show it.",
    "image": "Build, list or remove ws's workspace images.",
    "provision": "Show what ws puts into a workspace's guest.",
    "systemd": "Install, remove or show the units that start ws at boot.",
}


class WsGroup(click.Group):
    """Loads core commands lazily, adds plugin commands on first listing, and maps WsError to exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands(ctx)
        return sorted({*CORE_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in CORE_COMMANDS and name not in self.commands:
            module, attr = CORE_COMMANDS[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        if name not in self.commands:
            self._add_plugin_commands(ctx)
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Help text without importing every command module."""
        self._add_plugin_commands(ctx)
        rows = [(name, CORE_HELP[name]) for name in CORE_COMMANDS]
        rows += [(name, cmd.get_short_help_str(60)) for name, cmd in self.commands.items() if name not in CORE_HELP]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))

    def _add_plugin_commands(self, ctx: click.Context) -> None:
        state = ctx.ensure_object(CliState)
        if getattr(self, "_plugin_commands_state", None) is state:  # per run: in-process runs differ in plugins
            return
        self._plugin_commands_state = state
        state.plugins().register_commands(self)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any):
        """``--help`` lists plugin commands while parsing, before :meth:`invoke` runs."""
        with _user_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _user_errors():
            return super().invoke(ctx)


@contextmanager
def _user_errors() -> Iterator[None]:
    """A WsError is a sentence for the user on stderr and its exit status, never a traceback."""
    from ws.errors import WsError

    try:
        yield
    except WsError as exc:
        click.echo(f"ws: {exc}", err=True)
        raise click.exceptions.Exit(exc.exit_code) from None


@click.group(cls=WsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Configuration file. Default: $WS_CONFIG, else /etc/ws/ws.toml, else the embedded default.",
)
@click.option(
    "-v", "--verbose", count=True, help="Log each event on stderr too, not only warnings (-vv: debug as well)."
)
@click.option("-q", "--quiet", count=True, help="Log only errors on stderr.")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "console", "json"]),
    default="auto",
    show_default=True,
    help="Log format on stderr: console on a terminal, JSON lines otherwise. json logs each event without -v.",
)
@click.version_option(__version__, "--version", prog_name="ws")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int, quiet: int, log_format: str) -> None:
    """ws: isolated, reproducible workspaces on one Linux host.

    Workspaces are declared in a TOML file (see `ws config show`); each one runs on the backend plugin
    that provides its type (Incus, systemd-nspawn, microVM) and joins the sandbox network.
    """
    from ws.log import configure_on_first_use

    state = ctx.ensure_object(CliState)
    if config_path is not None:
        from pathlib import Path  # not at module level: pathlib costs ws --help a sixth of its time

        state.config_path = Path(config_path)
    configure_on_first_use(verbose - quiet, log_format)


def main() -> None:
    os.umask(0o022)  # files ws writes (state, host files) never group- or world-writable, whatever sudo passed on
    try:
        cli(prog_name="ws")
    except SystemExit as done:
        _exit(done.code)
    _exit(0)


def _exit(code: object) -> None:
    """End the process as ``sys.exit(code)`` would, without the interpreter's teardown: freeing every module
    ws imported (pydantic's above all) costs each command 30 to 50 ms after its work is done. The exit
    handlers still run (temporary folders of weakref finalizers, logging), and the output is flushed."""
    import atexit
    import sys

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()  # noqa: SLF001 - the exit handlers os._exit would skip
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (ws list | head): nothing more can be written
            status = status or 120
    os._exit(status)
