"""ws's state directory: per-workspace host folders, address leases, lock files.

Layout under ``state_dir`` (default /var/lib/ws)::

    workspaces/NAME/workspace       the shared work folder (owned by the login user)
    workspaces/NAME/ssh-host-keys/  the workspace's SSH host key (root only; mounted read-only)
    workspaces/NAME/agent/          the agent's config folder (owned by the login user, 0700)
    leases.json                     auto-assigned addresses, so they stay stable
    images/NAME/HASH/               content-addressed images (see ws.images and docs/images.md)
    network/BRIDGE/                 the sandbox network's runtime files (DNS forwarder, record of what is up)
    ssh/known_hosts                 every workspace's host key, for ws ssh
    locks/                          flock files (see ws.locking)

Only ws writes here, and it removes only what it created.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import tempfile
from pathlib import Path

from ws.types import WorkspacePaths

DEFAULT_STATE_DIR = Path("/var/lib/ws")
"""``state_dir``'s default; also the owner of the marks ws wrote before they named their state directory
(an unnamed bridge mark, an unnamed /etc/hosts block)."""
LEASES_FILE = "leases.json"
INSTALLATION_FILE = "installation-id"


def workspace_paths(state_dir: Path, name: str) -> WorkspacePaths:
    root = state_dir / "workspaces" / name
    return WorkspacePaths(
        root=root, work=root / "workspace", ssh_host_keys=root / "ssh-host-keys", agent=root / "agent"
    )


def ensure_workspace_dirs(paths: WorkspacePaths, uid: int, gid: int) -> None:
    """Create the host folders with their owners and modes; fix modes of existing ones, keep contents.

    The work and agent folders belong to the login user (files shared with the guest get the right owner);
    the host key folder stays root's and private because it holds a private key. The workspace's folder is
    root's with the login user's group and no access for others: whatever a guest leaves in the shared
    folders is out of other host users' reach (and :mod:`ws.hostshare` strips setuid and devices).
    """
    _make_dir(paths.root.parent, 0o755)
    _make_dir(paths.root, 0o750, 0, gid)
    _make_dir(paths.ssh_host_keys, 0o700, 0, 0)  # root's even if someone chowned it
    _make_dir(paths.work, 0o755, uid, gid)
    _make_dir(paths.agent, 0o700, uid, gid)


def remove_workspace_dirs(paths: WorkspacePaths) -> None:
    """``destroy --purge``: the workspace's host folders and nothing else."""
    if paths.root.exists():
        shutil.rmtree(paths.root)


def _make_dir(path: Path, mode: int, uid: int | None = None, gid: int | None = None) -> None:
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    os.chmod(path, mode)
    if uid is not None and os.geteuid() == 0:
        os.chown(path, uid, gid if gid is not None else uid)


def installation_id(state_dir: Path) -> str:
    """This ws installation's random id (made once): backends tag what they create with it, so two
    installations sharing one Incus project never take each other's instances for their own."""
    path = state_dir / INSTALLATION_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_hex(8) + "\n")
    os.chmod(tmp, 0o644)
    try:
        os.link(tmp, path)  # a concurrent first run made one too: the first one wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_text().strip()


def installation_of(paths: WorkspacePaths) -> str:
    """:func:`installation_id` of the state directory holding the workspace's folders."""
    return installation_id(paths.root.parent.parent)


def read_leases(state_dir: Path) -> dict[str, ipaddress.IPv4Address]:
    """Addresses handed out earlier; an unreadable or broken file means no leases (never fatal)."""
    try:
        raw = json.loads((state_dir / LEASES_FILE).read_text())
        return {str(name): ipaddress.IPv4Address(ip) for name, ip in raw.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def write_leases(state_dir: Path, leases: dict[str, str]) -> None:
    """Record the addresses of the current workspaces (atomically: a crash leaves the old file)."""
    atomic_write(state_dir / LEASES_FILE, (json.dumps(leases, indent=2, sort_keys=True) + "\n").encode(), 0o644)


def atomic_write(path: Path, content: bytes, mode: int, durable: bool = True) -> None:
    """Write via a temporary file in the same folder, fsync, rename: readers see old or new, never half.

    ``durable=False`` skips the fsync, for files that describe what a reboot ends anyway (a boot's record,
    what a running workspace was created from): after a power loss they may be empty, never half-written
    over the old content, and what they describe is gone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fchmod(file.fileno(), mode)
            if durable:
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
