"""``ws exec`` and ``ws logs`` for nspawn workspaces.

``exec`` enters every namespace of the guest's PID 1 with ``nsenter`` (user namespace included, so it starts
as the guest's root, not the host's) and drops to the login user with the guest's own ``setpriv
--init-groups`` (``doas`` needs the user's ``wheel`` membership), in the work folder, with a clean
environment. Before it execs, the command joins the cgroups of the guest's PID 1 in every hierarchy (below
the service's limit cgroups under the detached supervisor, below the unit's under systemd), so it is counted
and limited like the guest's own processes instead of staying in the cgroups of whoever ran ``ws``. Its exit
status is the command's. ``logs`` prints the console of the current or last boot (the log file, or the
unit's journal under systemd); ``-f`` follows it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from typing import TYPE_CHECKING

from ws.errors import WsError

from ws_plugin_nspawn import backend, rootfs

if TYPE_CHECKING:
    from ws.api import Context
    from ws.types import Workspace

GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def exec_argv(ctx: Context, init: int, command: list[str]) -> list[str]:
    """Enter the namespaces of the guest's PID 1 ``init`` and run ``command`` there as the login user."""
    user = ctx.login_user
    environment = [
        f"HOME={user.home}", f"USER={user.name}", f"LOGNAME={user.name}", "LANG=C.UTF-8", "SHELL=/bin/bash",
        f"PATH={GUEST_PATH}", *([f"TERM={os.environ['TERM']}"] if os.environ.get("TERM") else []),
    ]  # fmt: skip
    in_work_folder = f'cd {shlex.quote(user.workspace_dir)} 2>/dev/null || cd; exec "$@"'
    return [
        "nsenter", f"--target={init}", "--all", "--root", "--wd", "--",
        "setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", "--",
        "env", "-i", *environment, "sh", "-c", in_work_folder, "sh", *(command or ["bash", "--login"]),
    ]  # fmt: skip


def exec_command(ctx: Context, workspace: Workspace, command: list[str], interactive: bool) -> int:
    """Run ``command`` (a login shell if empty) as the login user, in the guest's cgroups. nsenter hands ws's
    own terminal (or pipes) to the command as they are, so ``interactive`` needs nothing more."""
    from ws.supervise import cgroups

    init = backend.leader(ctx, workspace)
    try:
        folders = cgroups.of_process(init) if init is not None else None
    except OSError:
        folders = None  # the guest stopped meanwhile
    if init is None or folders is None:
        raise WsError(f"workspace {workspace.name} is not running (start it with: ws up {workspace.name})")
    try:
        run = subprocess.run(exec_argv(ctx, init, command), preexec_fn=lambda: cgroups.join(folders), check=False)
    except subprocess.SubprocessError:  # join refused: the command would escape the workspace's limits
        where = ", ".join(map(str, folders))
        raise WsError(f"cannot run the command in the cgroups of {workspace.name}'s guest ({where})") from None
    return run.returncode


def logs(ctx: Context, workspace: Workspace, follow: bool) -> int:
    """The guest's console: stripped of terminal control characters (guest root writes it)."""
    from ws.terminal import printable, printable_writer

    sup = backend.supervisor(ctx)
    name = backend.service_name(workspace)
    if not follow:
        sys.stdout.write(printable(sup.logs(name)))
        return 0
    if sup.kind == "systemd":
        command = ["journalctl", "--no-pager", "--output=cat", "--follow", f"--unit={name}.service"]
    else:
        command = ["tail", "--lines=+1", "--follow=name", str(rootfs.console_log(ctx.state.root, workspace.name))]
    sink = printable_writer(lambda data: (sys.stdout.buffer.write(data), sys.stdout.buffer.flush()))
    try:
        with subprocess.Popen(command, stdout=subprocess.PIPE) as follower:
            assert follower.stdout is not None
            while chunk := follower.stdout.read1(65536):
                sink(chunk)
            return follower.wait()
    except KeyboardInterrupt:
        return 0
