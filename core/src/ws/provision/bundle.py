"""One provisioning bundle per workspace, delivered identically by every backend.

A bundle is plain files placed into the guest's root file system before its first boot (the first-boot
script and its unit among them) plus the host folders to mount. Building it is pure: no Context, no
side effects, so ``ws provision show`` and tests see exactly what a backend delivers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ws.errors import WsError
from ws.provision import account, agent, hostkey, network, nix, ssh, steps
from ws.provision.steps import FirstBootStep
from ws.provision.user import LoginUser
from ws.types import Mount, NetworkAttachment, ProvisionFile, Workspace

AGENT_DIR_NAME = ".claude"


@dataclass(frozen=True)
class Bundle:
    workspace: str
    user: LoginUser
    files: tuple[ProvisionFile, ...]
    steps: tuple[FirstBootStep, ...]
    """Already rendered into the first-boot script (one of ``files``); listed for auditing."""
    mounts: tuple[Mount, ...]
    """Host folders every backend shares into the guest, in this order."""

    def to_dict(self) -> dict:
        """What ``ws provision show --json`` prints: secret contents masked, never included."""
        return {
            "workspace": self.workspace,
            "user": {"name": self.user.name, "uid": self.user.uid, "gid": self.user.gid, "home": self.user.home},
            "files": [_file_dict(item) for item in self.files],
            "mounts": [
                {"host": str(m.host_path), "guest": m.guest_path, "read_only": m.read_only} for m in self.mounts
            ],
            "firstboot": [{"name": s.name, "description": s.description} for s in self.steps],
        }


def build_bundle(
    workspace: Workspace,
    attachment: NetworkAttachment,
    core_config,
    login_user: LoginUser,
    extra_files: Iterable[ProvisionFile] = (),
    *,
    host_nix_conf: Path = nix.HOST_NIX_CONF,
) -> Bundle:
    """Core's files and steps plus the plugins' ``extra_files``; a path claimed twice is an error."""
    first_boot = [
        account.user_step(login_user),
        account.sudo_fallback_step(),
        agent.claude_step(login_user),
    ]
    files = [
        network.networkd_file(workspace, attachment),
        *ssh.sshd_files(login_user),
        *account.doas_files(),
        *agent.agent_files(login_user, core_config.agent.claude_skip_permissions),
        *steps.render(first_boot),
    ]
    mounts = guest_mounts(workspace, login_user)
    settings = nix.nix_settings(core_config.nix, host_nix_conf)
    if settings is not None:
        files += nix.nix_files(settings)
        mounts += nix.nix_mounts(settings)
    files += list(extra_files)
    _check_unique(files, mounts)
    return Bundle(workspace.name, login_user, tuple(files), tuple(first_boot), tuple(mounts))


def guest_mounts(workspace: Workspace, user: LoginUser) -> list[Mount]:
    """The workspace's host folders (work, host keys, agent state) and its configured extra mounts."""
    paths = workspace.paths
    return [
        Mount(paths.work, user.workspace_dir),
        Mount(paths.ssh_host_keys, hostkey.GUEST_DIR, read_only=True),
        Mount(paths.agent, f"{user.home}/{AGENT_DIR_NAME}"),
        *workspace.mounts,
    ]


def _check_unique(files: list[ProvisionFile], mounts: list[Mount]) -> None:
    seen: set[str] = set()
    for item in files:
        if not item.path.startswith("/") or ".." in item.path.split("/"):
            raise WsError(f"provisioning file path {item.path!r} must be absolute without '..'")
        if item.path in seen:
            raise WsError(f"two provisioning contributions write {item.path}; only one may own a file")
        seen.add(item.path)
    targets = [m.guest_path.rstrip("/") for m in mounts]
    duplicates = sorted({t for t in targets if targets.count(t) > 1})
    if duplicates:
        raise WsError(f"two mounts share the guest path {duplicates[0]}")


def _file_dict(item: ProvisionFile) -> dict:
    entry = {
        "path": item.path,
        "mode": f"{item.mode:04o}",
        "owner": item.owner,
        "group": item.group,
        "size": len(item.content),
        "secret": item.secret,
    }
    if item.secret:
        entry["content"] = None
    else:
        try:
            entry["content"] = item.content.decode()
        except UnicodeDecodeError:
            entry["content"] = None
    return entry
