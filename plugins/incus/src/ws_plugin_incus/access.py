"""``ws exec`` and ``ws logs`` for Incus workspaces.

Non-interactive commands go through the exec API (websocket streaming, :mod:`execstream`) as the login user, so they
work the same on a remote server; their output is streamed and their exit status returned. The exec API
sets uid and gid but no supplementary groups, so the command starts as root and drops to the user with
``setpriv --init-groups`` (util-linux): ``doas`` needs the user's ``wheel`` membership. A terminal
session needs a pty relay, which the ``incus`` client provides: it is used against the local daemon, and
``ws ssh`` is the way in on a remote one.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import TYPE_CHECKING, NoReturn

from ws.errors import WsError

from ws_plugin_incus import execstream
from ws_plugin_incus.backend import api_for, settings_for

if TYPE_CHECKING:
    from ws.context import Context
    from ws.types import Workspace


def exec_command(ctx: Context, workspace: Workspace, command: list[str], interactive: bool) -> int:
    user = ctx.login_user
    env = {"HOME": user.home, "USER": user.name, "LOGNAME": user.name, "LANG": "C.UTF-8", "SHELL": "/bin/bash"}
    as_user = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", "--"]
    if interactive or not command:
        _incus_cli(ctx, workspace, [*as_user, *(command or ["bash", "--login"])], user.workspace_dir, env)
    api = api_for(ctx, workspace)
    _require_running(api, workspace)
    return execstream.run(
        api, workspace.instance_name, [*as_user, *command], env=env, cwd=user.workspace_dir,
        out=_writer(sys.stdout.buffer), err=_writer(sys.stderr.buffer),
    )  # fmt: skip


def logs(ctx: Context, workspace: Workspace, follow: bool) -> int:
    """The journal of a running workspace (``-f`` follows it); the console log of a stopped one."""
    from ws.terminal import printable_writer

    from ws_plugin_incus import readiness

    api = api_for(ctx, workspace)
    status = _status_text(api, workspace)
    if status != "running":
        sys.stdout.write(readiness.console_tail(api, workspace.instance_name, lines=10_000) + "\n")
        return 0
    command = ["journalctl", "--no-pager", "-b", *(["-f"] if follow else [])]
    return execstream.run(
        api, workspace.instance_name, command, env={}, cwd="/",
        out=printable_writer(_writer(sys.stdout.buffer)), err=printable_writer(_writer(sys.stderr.buffer)),
    )  # fmt: skip


def _writer(stream):
    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()

    return write


def _require_running(api, workspace: Workspace) -> None:
    if _status_text(api, workspace) != "running":
        raise WsError(f"workspace {workspace.name} is not running (ws up {workspace.name})")


def _status_text(api, workspace: Workspace) -> str:
    from ws_plugin_incus import instances

    instance = instances.get(api, workspace)
    if instance is None:
        return "absent"
    if not instances.owned(instance, workspace):
        from ws_plugin_incus.errors import foreign_instance

        raise foreign_instance(workspace.instance_name, api.endpoint)
    return (instance.get("status") or "").lower()


def _incus_cli(ctx: Context, workspace: Workspace, command: list[str], cwd: str, env: dict) -> NoReturn:
    settings = settings_for(ctx, workspace)
    if settings.remote:
        raise WsError(
            f"an interactive session on the remote Incus server {settings.url} needs a terminal relay ws "
            f"does not have; use `ws ssh {workspace.name}`"
        )
    incus = shutil.which("incus")
    if incus is None:
        raise WsError("an interactive `ws exec` needs the incus client (apt-get install incus-client)")
    _status_text(api_for(ctx, workspace), workspace)  # refuses a foreign instance of that name
    argv = [incus, "exec", workspace.instance_name, "--cwd", cwd, "-t"]
    if settings.project:
        argv += ["--project", settings.project]
    argv += [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    os.environ["INCUS_SOCKET"] = str(settings.local_socket())
    os.execv(incus, [*argv, "--", *command])
