"""``ws exec`` and ``ws logs`` for microVM workspaces.

``exec`` logs in over SSH as the login user with ws's own exec key (delivered into the guest's authorized
keys with every boot) and checks the guest against the workspace's pinned host key in ws's known_hosts,
never trusting a key on first use. The command's words are quoted for the remote shell, so the exit status
and arguments are the command's own. ``logs`` prints the serial console of the current or last boot.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from ws.errors import WsError

from ws_plugin_microvm import backend

if TYPE_CHECKING:
    from ws.api import Context, Workspace


def ssh_argv(ctx: Context, workspace: Workspace, command: list[str], interactive: bool) -> list[str]:
    from ws.network.hostfiles import known_hosts_path

    user = ctx.login_user
    options = [
        f"UserKnownHostsFile={known_hosts_path(ctx.state.root)}", "GlobalKnownHostsFile=/dev/null",
        "StrictHostKeyChecking=yes", f"HostKeyAlias={workspace.hostname}", "BatchMode=yes", "IdentitiesOnly=yes",
        "IdentityAgent=none", "ConnectTimeout=10", "LogLevel=ERROR",
    ]  # fmt: skip
    argv = ["ssh", "-F", "/dev/null", "-i", str(backend.plugin_dir(ctx) / "exec_key"), "-t" if interactive else "-T"]
    argv += [arg for option in options for arg in ("-o", option)]
    remote = f"cd {shlex.quote(user.workspace_dir)} 2>/dev/null; exec {shlex.join(command)}" if command else ""
    return [*argv, f"{user.name}@{workspace.ip}", *([remote] if remote else [])]


def exec_command(ctx: Context, workspace: Workspace, command: list[str], interactive: bool) -> int:
    from ws.types import State

    if backend.status(ctx, workspace).state != State.RUNNING:
        raise WsError(f"workspace {workspace.name} is not running (start it with: ws up {workspace.name})")
    return subprocess.run(ssh_argv(ctx, workspace, command, interactive), check=False).returncode


def logs(ctx: Context, workspace: Workspace, follow: bool) -> int:
    """The console log; with ``follow``, new lines as they come until the VM stops (or Ctrl-C)."""
    path = backend.boot_dir(ctx, workspace) / backend.CONSOLE
    if not path.exists():
        raise WsError(f"workspace {workspace.name} has no console log yet (it has not been booted)")
    sup = backend.supervisor(ctx)
    name = backend.service_name(workspace)
    try:
        with open(path, "rb") as console:
            while True:
                chunk = console.read(65536)
                if chunk:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                elif not follow or not sup.status(name).running:
                    return 0
                else:
                    time.sleep(0.3)
    except KeyboardInterrupt:
        return 0
