"""The workspace's Incus instance: the one create request, ownership, stop and delete.

Every instance ws creates carries ``user.ws.workspace = NAME``; an instance without it is someone else's
and is never stopped or deleted (``ensure_absent`` raises instead). The create request carries the whole
instance (config, NIC, every disk) so nothing is patched afterwards.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ws_plugin_incus.errors import IncusError, NotFound, foreign_instance

if TYPE_CHECKING:
    from ws.types import Mount, NetworkAttachment, Workspace

    from ws_plugin_incus.client import Api
    from ws_plugin_incus.settings import IncusSettings

OWNER_KEY = "user.ws.workspace"
IMAGE_KEY = "user.ws.image"
NIC = "eth0"
HOST_KEYS_GUEST_DIR = "/etc/ssh-host-keys"
STOP_TIMEOUT = 30


@dataclass(frozen=True)
class Sharing:
    """How host folders reach the guest: idmapped mounts (``shift``) or the documented fallback."""

    shift: bool
    uid: int
    gid: int


def create_body(
    workspace: Workspace,
    attachment: NetworkAttachment,
    settings: IncusSettings,
    source: dict,
    image_label: str,
    mounts: list[Mount],
    sharing: Sharing,
) -> dict:
    """The single ``POST /1.0/instances`` request: unprivileged, isolated idmap, NIC and every disk.

    Without idmapped mounts (``sharing.shift`` false) the login user's uid/gid are mapped 1:1 with
    ``raw.idmap`` so the shared folders keep their owner, and the host keys are pushed as files instead of
    mounted (root's files cannot be shared into an unprivileged container without shifting).
    """
    config = {
        "security.privileged": "false",
        "security.idmap.isolated": "true",
        "boot.autostart": "false",
        OWNER_KEY: workspace.name,
        IMAGE_KEY: image_label,
    }
    if workspace.cpus:
        config["limits.cpu"] = str(workspace.cpus)
    if workspace.memory_mib:
        config["limits.memory"] = f"{workspace.memory_mib}MiB"
    if not sharing.shift:
        config["raw.idmap"] = f"uid {sharing.uid} {sharing.uid}\ngid {sharing.gid} {sharing.gid}"
    devices: dict[str, dict] = {
        NIC: {
            "type": "nic",
            "nictype": "bridged",
            "parent": attachment.bridge,
            "name": NIC,
            "hwaddr": workspace.mac,
            "host_name": workspace.host_interface,
            "mtu": str(attachment.mtu),
        }
    }
    if settings.storage_pool:
        devices["root"] = {"type": "disk", "path": "/", "pool": settings.storage_pool}
    for mount in mounts:
        if not sharing.shift and mount.guest_path == HOST_KEYS_GUEST_DIR:
            continue  # delivered as files, see above
        disk = {"type": "disk", "source": str(mount.host_path), "path": mount.guest_path}
        if mount.read_only:
            disk["readonly"] = "true"
        if sharing.shift:
            disk["shift"] = "true"
        devices[device_name(mount.guest_path, devices)] = disk
    return {
        "name": workspace.instance_name,
        "type": "container",
        "description": f"ws workspace {workspace.name}",
        "source": source,
        "config": config,
        "devices": devices,
        "profiles": list(settings.profiles),
    }


def device_name(guest_path: str, taken: dict) -> str:
    """A readable, unique device name from the guest path (``/home/dev/workspace`` -> ``ws-workspace``)."""
    base = "ws-" + (re.sub(r"[^a-z0-9]+", "-", guest_path.lower().rsplit("/", 1)[-1]).strip("-") or "root")
    name, n = base[:60], 2
    while name in taken:
        name, n = f"{base[:56]}-{n}", n + 1
    return name


def get(api: Api, workspace: Workspace) -> dict | None:
    """The instance with its state (one request), or None when there is none."""
    try:
        return api.get(f"instances/{workspace.instance_name}", f"reading {workspace.instance_name}", recursion=1)
    except NotFound:
        return None


def owned(instance: dict, workspace: Workspace) -> bool:
    return (instance.get("config") or {}).get(OWNER_KEY) == workspace.name


def ensure_absent(api: Api, workspace: Workspace, instance: dict | None = None) -> bool:
    """Stop and delete ws's instance of the workspace if there is one; returns whether one was removed.

    A foreign instance of that name is an error, never deleted. Operations a killed ``ws`` left running
    on the instance (the daemon finishes them on its own, e.g. a create still unpacking) are waited for
    first: Incus refuses to delete a busy instance.
    """
    name = workspace.instance_name
    instance = instance if instance is not None else get(api, workspace)
    if instance is None:
        return False
    if not owned(instance, workspace):
        raise foreign_instance(name, api.endpoint)
    wait_for_operations(api, name)
    if (instance.get("status") or "").lower() not in ("stopped", ""):
        try:
            api.request(
                "put",
                f"instances/{name}/state",
                f"stopping {name}",
                json={"action": "stop", "force": True, "timeout": STOP_TIMEOUT},
            )
        except NotFound:
            return True
    with contextlib.suppress(NotFound):
        api.request("delete", f"instances/{name}", f"deleting {name}")
    return True


def wait_for_operations(api: Api, instance: str) -> None:
    """Wait for the running background operations that involve ``instance``."""
    running = (api.get("operations", "listing operations", recursion=1) or {}).get("running") or []
    path = f"/1.0/instances/{instance}"
    for operation in running:
        if path in ((operation.get("resources") or {}).get("instances") or ()):
            with contextlib.suppress(IncusError):  # a failed operation is over too: that is all that matters
                api.wait(f"operations/{operation['id']}", f"waiting for {instance}'s {operation['description']}")


def create(api: Api, workspace: Workspace, body: dict) -> None:
    """Create the instance; a leftover of a crashed run in the way is removed first (if it is ws's)."""
    extra = {"params": {"target": api.settings.target}} if api.settings.target else {}
    doing = f"creating {workspace.instance_name}"
    try:
        api.request("post", "instances", doing, json=body, **extra)
    except IncusError as exc:
        if exc.status != 409 and "already exists" not in str(exc):
            raise
        ensure_absent(api, workspace)
        api.request("post", "instances", doing, json=body, **extra)


def start(api: Api, workspace: Workspace) -> None:
    name = workspace.instance_name
    api.request("put", f"instances/{name}/state", f"starting {name}", json={"action": "start"})
