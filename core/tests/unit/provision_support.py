"""Builders shared by the provisioning unit tests (importable: conftest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

from ws.config.model import CoreConfig
from ws.provision import LoginUser, build_bundle
from ws.types import Mount, NetworkAttachment, ProvisionFile, Workspace, WorkspacePaths

USER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHJ0ZXN0LWtleS1mb3Itd3MtcHJvdmlzaW9uLXRlc3Q alice@host"


def make_workspace(root: Path, ip: str = "192.168.83.50") -> Workspace:
    paths = WorkspacePaths(
        root=root, work=root / "workspace", ssh_host_keys=root / "ssh-host-keys", agent=root / "agent"
    )
    return Workspace(
        name="dev",
        type="nspawn",
        ip=ip,
        prefixlen=24,
        mac="02:00:00:00:00:01",
        hostname="workspace-dev",
        host_interface="ve-dev",
        instance_name="workspace-dev",
        network="sandbox",
        image="debian-bookworm",
        autostart=False,
        cpus=None,
        memory_mib=None,
        cid=None,
        host_key=None,
        mounts=(Mount(Path("/srv/data"), "/data", read_only=True),),
        paths=paths,
    )


def make_user(keys: tuple[str, ...] = (USER_KEY,)) -> LoginUser:
    return LoginUser(name="alice", uid=1234, gid=1235, home="/home/alice", authorized_keys=keys)


def make_bundle(tmp_path: Path, config: dict | None = None, host_nix_conf: Path | None = None, **kwargs):
    core = CoreConfig.model_validate(config if config is not None else {"nix": {"inherit_host": False}}, strict=False)
    return build_bundle(
        make_workspace(tmp_path),
        NetworkAttachment("sandbox", "sandbox-br", "192.168.83.1", ("192.168.83.1",), 24, mtu=1500),
        core,
        kwargs.pop("user", make_user()),
        host_nix_conf=host_nix_conf or tmp_path / "absent-nix.conf",
        **kwargs,
    )


def by_path(bundle) -> dict[str, ProvisionFile]:
    return {item.path: item for item in bundle.files}


def text(bundle, path: str) -> str:
    return by_path(bundle)[path].content.decode()
