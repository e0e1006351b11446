"""The workspace's Incus instance: the one create request, ownership, stop and delete.

Every instance ws creates carries ``user.ws.workspace = NAME``; an instance without it is someone else's
and is never stopped or deleted (``ensure_absent`` raises instead). The create request carries the whole
instance (config, NIC, every disk) so nothing is patched afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ws_plugin_incus.errors import IncusError, NotFound, foreign_instance
from ws_plugin_incus.listing import IMAGE_KEY, INSTALLATION_KEY, NIC, OWNER_KEY, owned

if TYPE_CHECKING:
    from ws.types import Mount, NetworkAttachment, Workspace

    from ws_plugin_incus.client import Api
    from ws_plugin_incus.settings import IncusSettings

DETACHED = "-old-"
STANDBY_KEY = "user.ws.standby"
"""On the ``-next`` instance: the hash of the create request it was made from (see :func:`replace`)."""
HOST_KEYS_GUEST_DIR = "/etc/ssh-host-keys"
STOP_TIMEOUT = 30


@dataclass(frozen=True)
class Isolation:
    """What the NIC lets the guest do on the bridge: Incus' own filters on top of core's bridge table."""

    guest_to_guest: bool = False
    """False: the port is isolated (``security.port_isolation``), so it only reaches the host."""


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
    pool: str,
    installation: str,
    isolation: Isolation = Isolation(),
) -> dict:
    """The single ``POST /1.0/instances`` request: unprivileged, isolated idmap, NIC and every disk.

    No profile is applied: a device in a profile (a NIC on ``incusbr0``, a disk) would bypass ws's
    firewall or share what ws did not ask for, so the instance has exactly ws's devices, the root disk on
    ``pool`` included. The NIC may only send the workspace's MAC and IPv4 address (Incus' filters, as
    core's bridge table does for every backend) and, unless ``guest_to_guest``, its bridge port is isolated.

    Without idmapped mounts (``sharing.shift`` false) the login user's uid/gid are mapped 1:1 with
    ``raw.idmap`` so the shared folders keep their owner, and the host keys are pushed as files instead of
    mounted (root's files cannot be shared into an unprivileged container without shifting).
    """
    config = {
        "security.privileged": "false",
        "security.idmap.isolated": "true",
        "boot.autostart": "false",
        OWNER_KEY: workspace.name,
        INSTALLATION_KEY: installation,
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
            "ipv4.address": workspace.ip,
            "security.mac_filtering": "true",
            "security.ipv4_filtering": "true",
            "security.port_isolation": "false" if isolation.guest_to_guest else "true",
        },
        "root": {"type": "disk", "path": "/", "pool": pool},
    }
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
        "profiles": [],
    }


def default_pool(api: Api) -> str:
    """The pool of the ``default`` profile's root disk: where ``incus launch`` would put the instance.

    Only the pool is taken from the profile; its other devices never reach ws's instances."""
    from ws.errors import WsError

    profile = api.get("profiles/default", "reading the default profile") or {}
    for device in (profile.get("devices") or {}).values():
        if device.get("type") == "disk" and device.get("path") == "/" and device.get("pool"):
            return device["pool"]
    raise WsError(f"the default profile on {api.endpoint} has no root disk: set [incus] storage_pool")


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


def ensure_absent(
    api: Api, workspace: Workspace, instance: dict | None = None, *, detach: list[str] | None = None
) -> bool:
    """Stop and delete ws's instance of the workspace if there is one; returns whether one was removed.

    A foreign instance of that name is an error, never deleted. Operations a killed ``ws`` left running
    on the instance (the daemon finishes them on its own, e.g. a create still unpacking) are waited for
    first: Incus refuses to delete a busy instance. With ``detach`` (a list) the stopped instance is not
    deleted but renamed out of the way (``-old-XXXXXX``, appended to the list); ``remove_detached``
    removes such instances (``ws down``).
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
        if detach is not None:
            # Incus refuses to start an instance whose MAC another instance still has, even a stopped one
            # being deleted: the old one gives up its NIC (a "none" device also masks a profile's NIC).
            api.request("patch", f"instances/{name}", f"detaching {name}", json={"devices": {NIC: {"type": "none"}}})
            trash = f"{name}{DETACHED}{secrets.token_hex(3)}"
            api.request("post", f"instances/{name}", f"renaming {name}", json={"name": trash})
            detach.append(trash)
        else:
            api.request("delete", f"instances/{name}", f"deleting {name}")
    return True


def remove_detached(api: Api, workspace: Workspace) -> None:
    """Delete the workspace's detached old instances, waiting for deletions already in progress."""
    prefix = f"{workspace.instance_name}{DETACHED}"
    for url in api.get("instances", "listing instances") or ():
        if (name := instance_of(url)).startswith(prefix):
            ensure_absent(api, _named(workspace, name))


def wait_for_operations(api: Api, instance: str) -> None:
    """Wait for the running background operations that involve ``instance``."""
    running = (api.get("operations", "listing operations", recursion=1) or {}).get("running") or []
    for operation in running:
        if instance in map(instance_of, (operation.get("resources") or {}).get("instances") or ()):
            with contextlib.suppress(IncusError):  # a failed operation is over too: that is all that matters
                api.wait(f"operations/{operation['id']}", f"waiting for {instance}'s {operation['description']}")


def instance_of(url: str) -> str:
    """The instance name in an API URL; outside the default project Incus appends ``?project=NAME``."""
    return url.removeprefix("/1.0/instances/").partition("?")[0]


def next_name(workspace: Workspace) -> str:
    return f"{workspace.instance_name}-next"


def next_body(workspace: Workspace, body: dict) -> dict:
    """The create request for the workspace's next instance: ``body`` under the ``-next`` name, marked with
    the hash of ``body`` so it is reused only for exactly that request (same image, devices, limits)."""
    spec = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
    return {**body, "name": next_name(workspace), "config": {**body["config"], STANDBY_KEY: spec}}


def replace(api: Api, workspace: Workspace, body: dict) -> list[str]:
    """Make ``body``'s instance the workspace's instance, replacing the old one, with the slow parts overlapped.

    The new instance is made (or a pristine one made ahead of time is taken, see :func:`prepare_next`) as
    ``workspace-NAME-next`` while another thread stops the old ``workspace-NAME`` and renames it out of the
    way; then the new one is renamed. Returns the old instances' new names: the caller deletes them once
    the new one runs (:func:`delete_in_background`), so their deletion does not compete with the start for
    the disk. Files are pushed only after the rename: Incus re-shifts the whole root file system at the next
    start of an instance that was written to and then renamed (14 s instead of 1 s here). Whatever a killed
    run leaves is the old instance, a ``-next`` one (reused only if it still matches the request and was
    never started), a renamed ``-old-`` one, or the renamed new one: the next ``ws up`` or ``ws down``
    removes it.
    """
    old = get(api, workspace)
    if old is not None and not owned(old, workspace):
        raise foreign_instance(workspace.instance_name, api.endpoint)
    remover = _Remover(api.settings, workspace, old) if old is not None else None
    name = next_name(workspace)
    try:
        prepare_next(api, workspace, next_body(workspace, body))
    finally:
        detached = remover.finish() if remover is not None else []
    api.request("post", f"instances/{name}", f"renaming {name}", json={"name": workspace.instance_name})
    return detached


def delete_in_background(api: Api, names: list[str]) -> None:
    """Ask the daemon to delete stopped instances and return at once (it finishes on its own)."""
    for name in names:
        with contextlib.suppress(IncusError):
            api.raw("delete", f"instances/{name}", f"deleting {name}")


def prepare_next(api: Api, workspace: Workspace, body: dict) -> None:
    """Make sure ``workspace-NAME-next`` exists as ``body`` describes and was never started."""
    name = next_name(workspace)
    current = get(api, _named(workspace, name))
    if current is not None and owned(current, workspace):
        wait_for_operations(api, name)  # it may still be unpacking
        pristine = (current.get("config") or {}).get(STANDBY_KEY) == body["config"][STANDBY_KEY]
        if pristine and not (current.get("config") or {}).get("volatile.last_state.power"):
            return
    if current is not None:
        ensure_absent(api, _named(workspace, name), current)
    extra = {"params": {"target": api.settings.target}} if api.settings.target else {}
    api.request("post", "instances", f"creating {name}", json=body, **extra)


def create_next_in_background(api: Api, workspace: Workspace, body: dict) -> None:
    """Ask the daemon to make the next instance ahead of time and return at once: the daemon finishes the
    operation on its own, so the next re-creation skips unpacking the image. A failure only costs that."""
    extra = {"params": {"target": api.settings.target}} if api.settings.target else {}
    with contextlib.suppress(IncusError):
        api.raw("post", "instances", f"creating {next_name(workspace)}", json=next_body(workspace, body), **extra)


class _Remover:
    """Stops the old instance and renames it out of the way, in a thread with its own connection."""

    def __init__(self, settings, workspace: Workspace, instance: dict):
        self.error: BaseException | None = None
        self.detached: list[str] = []
        self.thread = threading.Thread(target=self._run, args=(settings, workspace, instance), daemon=True)
        self.thread.start()

    def _run(self, settings, workspace: Workspace, instance: dict) -> None:
        from ws_plugin_incus.client import connect

        try:
            ensure_absent(connect(settings), workspace, instance, detach=self.detached)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller in finish()
            self.error = exc

    def finish(self) -> list[str]:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.detached


def _named(workspace: Workspace, instance_name: str) -> Workspace:
    return dataclasses.replace(workspace, instance_name=instance_name)


def start(api: Api, workspace: Workspace) -> None:
    name = workspace.instance_name
    api.request("put", f"instances/{name}/state", f"starting {name}", json={"action": "start"})
