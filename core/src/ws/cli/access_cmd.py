"""Getting into a workspace: exec, ssh, logs."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import click

from ws.cli.common import pass_ws_context, workspace_names

if TYPE_CHECKING:
    from ws.context import Context


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("name", shell_complete=workspace_names)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("-t", "--tty", is_flag=True, help="Allocate a terminal (default: when stdin is one).")
@pass_ws_context
def exec_command(ctx: Context, name: str, command: tuple[str, ...], tty: bool) -> None:
    """Run COMMAND in workspace NAME as the login user; exit with its status.

    Put `--` before the command: `ws exec dev -- make test`. Without a command, opens a login shell.
    """
    import sys

    workspace = ctx.workspace(name)
    interactive = tty or (not command and sys.stdin.isatty())
    code = ctx.backend(workspace).exec(list(command), interactive)
    click.get_current_context().exit(int(code or 0))


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("name", shell_complete=workspace_names)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@pass_ws_context
def ssh(ctx: Context, name: str, command: tuple[str, ...]) -> None:
    """Open an SSH session to workspace NAME (or run `-- COMMAND` there).

    The workspace's host key is checked against ws's known_hosts file (strict checking, never trust on
    first use). Run it as the user whose SSH key is in the workspace's authorized keys.
    """
    workspace = ctx.workspace(name)
    if shutil.which("ssh") is None:
        from ws.errors import WsError

        raise WsError("ssh is not installed (apt-get install openssh-client)")
    argv = ssh_argv(ctx, workspace.name, list(command))
    os.execvp(argv[0], argv)


def ssh_argv(ctx: Context, name: str, command: list[str]) -> list[str]:
    """The ssh command line for a workspace: pinned host key, its address, the login user."""
    workspace = ctx.workspace(name)
    from ws.network.hostfiles import known_hosts_path

    known_hosts = known_hosts_path(ctx.state.root)
    return [
        "ssh",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"HostKeyAlias={workspace.hostname}",
        f"{ctx.login_user.name}@{workspace.ip}",
        *command,
    ]


@click.command()
@click.argument("name", shell_complete=workspace_names)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new log lines.")
@pass_ws_context
def logs(ctx: Context, name: str, follow: bool) -> None:
    """Show workspace NAME's console or journal log."""
    code = ctx.backend(ctx.workspace(name)).logs(follow)
    click.get_current_context().exit(int(code or 0))
