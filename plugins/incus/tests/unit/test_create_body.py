"""The one create request: what the instance is made of, decided without a daemon."""

from __future__ import annotations

from pathlib import Path

import pytest
from ws.types import Mount, NetworkAttachment, Workspace, WorkspacePaths
from ws_plugin_incus.instances import (
    HOST_KEYS_GUEST_DIR,
    INSTALLATION_KEY,
    OWNER_KEY,
    Isolation,
    Sharing,
    create_body,
    device_name,
)
from ws_plugin_incus.settings import IncusSettings

ROOT = Path("/var/lib/ws/workspaces/dev")
PATHS = WorkspacePaths(ROOT, ROOT / "workspace", ROOT / "ssh-host-keys", ROOT / "agent")
MOUNTS = [
    Mount(PATHS.work, "/home/dev/workspace"),
    Mount(PATHS.ssh_host_keys, HOST_KEYS_GUEST_DIR, read_only=True),
    Mount(PATHS.agent, "/home/dev/.claude"),
    Mount(Path("/srv/data"), "/data", read_only=True),
]
ATTACHMENT = NetworkAttachment("sandbox", "sandbox-br", "192.168.83.1", ("192.168.83.1",), 24)
SOURCE = {"type": "image", "alias": "ws-debian-bookworm-0123456789abcdef"}


def _workspace(**changes) -> Workspace:
    values = dict(
        name="dev", type="incus", ip="192.168.83.95", prefixlen=24, mac="02:61:5c:6a:41:36",
        hostname="workspace-dev", host_interface="wsi-dev", instance_name="workspace-dev", network="sandbox",
        image="debian-bookworm", autostart=False, cpus=None, memory_mib=None, cid=None, host_key=None,
        mounts=(), paths=PATHS,
    )  # fmt: skip
    values.update(changes)
    return Workspace(**values)


def _body(workspace=None, settings=None, shift=True, isolation=None):
    return create_body(
        workspace or _workspace(), ATTACHMENT, settings or IncusSettings(), SOURCE, "label", MOUNTS,
        Sharing(shift=shift, uid=1000, gid=1000), pool="default", installation="0123abcd",
        isolation=isolation or Isolation(),
    )  # fmt: skip


def test_unprivileged_isolated_and_marked_as_ws_s():
    body = _body()
    assert body["name"] == "workspace-dev" and body["type"] == "container" and body["source"] == SOURCE
    config = body["config"]
    assert config["security.privileged"] == "false"
    assert config["security.idmap.isolated"] == "true"
    assert config[OWNER_KEY] == "dev" and config[INSTALLATION_KEY] == "0123abcd"
    assert "raw.idmap" not in config and "limits.cpu" not in config and "limits.memory" not in config


def test_no_profile_brings_devices_only_ws_s_own_are_there():
    body = _body()
    assert body["profiles"] == []
    assert body["devices"]["root"] == {"type": "disk", "path": "/", "pool": "default"}
    assert {d["type"] for d in body["devices"].values()} == {"nic", "disk"}
    assert [n for n, d in body["devices"].items() if d["type"] == "nic"] == ["eth0"]


def test_nic_is_bridged_bound_to_its_mac_and_address_and_isolated():
    nic = _body()["devices"]["eth0"]
    assert nic == {
        "type": "nic", "nictype": "bridged", "parent": "sandbox-br", "name": "eth0",
        "hwaddr": "02:61:5c:6a:41:36", "host_name": "wsi-dev", "mtu": "1500", "ipv4.address": "192.168.83.95",
        "security.mac_filtering": "true", "security.ipv4_filtering": "true", "security.port_isolation": "true",
    }  # fmt: skip
    shared = _body(isolation=Isolation(guest_to_guest=True))["devices"]["eth0"]
    assert shared["security.port_isolation"] == "false" and shared["security.mac_filtering"] == "true"


def test_every_mount_is_a_shifted_disk_read_only_where_asked():
    disks = {d["path"]: d for d in _body()["devices"].values() if d["type"] == "disk" and d["path"] != "/"}
    assert sorted(disks) == ["/data", HOST_KEYS_GUEST_DIR, "/home/dev/.claude", "/home/dev/workspace"]
    assert all(d["shift"] == "true" for d in disks.values())
    assert disks[HOST_KEYS_GUEST_DIR]["readonly"] == "true" and disks["/data"]["readonly"] == "true"
    assert "readonly" not in disks["/home/dev/workspace"]
    assert disks["/home/dev/workspace"]["source"] == str(PATHS.work)


def test_without_idmapped_mounts_the_user_is_mapped_and_host_keys_are_not_mounted():
    body = _body(shift=False)
    assert body["config"]["raw.idmap"] == "uid 1000 1000\ngid 1000 1000"
    disks = [d for d in body["devices"].values() if d["type"] == "disk" and d["path"] != "/"]
    assert all("shift" not in d for d in disks)
    assert HOST_KEYS_GUEST_DIR not in [d["path"] for d in disks]


def test_limits_and_storage_pool():
    body = _body(_workspace(cpus=4, memory_mib=4096))
    assert body["config"]["limits.cpu"] == "4"
    assert body["config"]["limits.memory"] == "4096MiB"


@pytest.mark.parametrize(
    ("path", "taken", "expected"),
    [("/home/dev/workspace", {}, "ws-workspace"), ("/etc/ssh-host-keys", {}, "ws-ssh-host-keys"),
     ("/data", {"ws-data": {}}, "ws-data-2"), ("/", {}, "ws-root")],
)  # fmt: skip
def test_device_names_are_readable_and_unique(path, taken, expected):
    assert device_name(path, taken) == expected


def test_an_instance_of_another_installation_is_not_ours(tmp_path):
    from ws.state import installation_id, workspace_paths
    from ws_plugin_incus.instances import owned

    workspace = _workspace(paths=workspace_paths(tmp_path, "dev"))
    ours = installation_id(tmp_path)
    assert installation_id(tmp_path) == ours and len(ours) == 16  # made once, then read
    assert owned({"config": {OWNER_KEY: "dev", INSTALLATION_KEY: ours}}, workspace)
    assert not owned({"config": {OWNER_KEY: "dev", INSTALLATION_KEY: "another-ws"}}, workspace)
    assert owned({"config": {OWNER_KEY: "dev"}}, workspace)  # made before installations were tagged
    assert not owned({"config": {OWNER_KEY: "web", INSTALLATION_KEY: ours}}, workspace)
