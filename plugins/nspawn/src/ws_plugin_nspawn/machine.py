"""The systemd-nspawn command line of one boot, and finding the container's init.

``--boot`` runs the guest's systemd; ``--private-users=SHIFT:65536`` puts the guest in its own user namespace
over a root file system already shown with shifted owners (``ownership=off``: nspawn changes nothing);
``--network-bridge`` makes the veth whose host end ``vb-NAME`` joins the network's bridge (nspawn names it,
from the machine name, which is the workspace name) and whose guest end is ``host0``; binds are idmapped, so
files keep their host owners inside (the login user's files are the login user's, root's are root's).
``--console=read-only`` sends the console (with systemd's boot status) to the log; the guest's resolv.conf,
timezone and journal are its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from ws_plugin_nspawn.rootfs import ID_COUNT


def nspawn_argv(
    program: str,
    *,
    machine: str,
    hostname: str,
    root: Path,
    shift: int,
    bridge: str,
    mounts,
    register: bool,
) -> list[str]:
    argv = [
        program,
        "--quiet",
        "--boot",
        "--keep-unit",
        f"--register={'yes' if register else 'no'}",
        f"--machine={machine}",
        f"--hostname={hostname}",
        f"--directory={root}",
        f"--private-users={shift}:{ID_COUNT}",
        "--private-users-ownership=off",
        f"--network-bridge={bridge}",
        "--console=read-only",
        "--link-journal=no",
        "--resolv-conf=off",
        "--timezone=off",
        "--settings=no",
    ]
    for mount in mounts:
        for path in (str(mount.host_path), mount.guest_path):
            if ":" in path:
                raise ValueError(f"systemd-nspawn cannot bind a path with ':' ({path})")
        option = "--bind-ro" if mount.read_only else "--bind"
        argv.append(f"{option}={mount.host_path}:{mount.guest_path}:idmap")
    return [*argv, "--", "--show-status=yes"]  # for the guest's systemd: boot progress on the console


def container_init(nspawn_pid: int) -> int | None:
    """The guest's PID 1 as seen from the host: nspawn's child in another PID namespace."""
    own = os.readlink("/proc/self/ns/pid")
    try:
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
    except OSError:
        return None
    for child in children:
        try:
            if os.readlink(f"/proc/{child}/ns/pid") != own:
                return int(child)
        except OSError:
            continue
    return None


def processes_in_range(shift: int) -> list[int]:
    """Pids of every process in a user namespace mapping guest id 0 to ``shift``: the container's processes.

    The range is this boot's alone (:mod:`ws_plugin_nspawn.uidrange`), so this finds a guest whose nspawn
    was killed (its init then lives on, re-parented) without trusting any pid file.
    """
    wanted = ["0", str(shift), str(ID_COUNT)]
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if Path(entry.path, "uid_map").read_text().split() == wanted:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def kill_container(shift: int, timeout: float = 10.0) -> bool:
    """SIGKILL every process of the container and wait until they are gone; True if any ran."""
    pids = processes_in_range(shift)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while processes_in_range(shift) and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(pids)
