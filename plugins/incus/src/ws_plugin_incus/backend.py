"""What each backend hook does with Incus; :mod:`ws_plugin_incus.plugin` only forwards to here.

Core holds the workspace's lock around every call and has created the host folders and the host key
before ``create``. Instances are ephemeral: ``create`` makes a fresh one from the current image on every
``ws up`` and replaces the old one itself (the type sets ``replaces_in_create``, so core does not stop it
first), ``stop`` deletes it. Once the command's workspaces are up, the daemon is asked to make the *next*
instance ahead of time (``[incus] standby``), so re-creating skips unpacking the image.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING

from ws.errors import WsError
from ws.types import State, WorkspaceStatus

from ws_plugin_incus import delivery, images, instances, readiness
from ws_plugin_incus.client import Api, connect

if TYPE_CHECKING:
    from ws.context import Context
    from ws.types import NetworkAttachment, Workspace

    from ws_plugin_incus.settings import IncusSettings

STATES = {"running": State.RUNNING, "stopped": State.STOPPED}
_after_start: dict[str, tuple[dict, list[str]]] = {}
"""Per workspace created in this process: its create request and the old instances to delete, for
``start`` to hand to the daemon once the new instance runs (so they do not compete with the start)."""


def settings_for(ctx: Context, workspace: Workspace | None = None) -> IncusSettings:
    """``[incus]`` with the workspace's ``[workspaces.NAME.incus]`` overrides applied."""
    from pydantic import ValidationError

    from ws_plugin_incus.settings import effective

    section = ctx.config.sections.get("incus")
    overrides = workspace.options if workspace is not None else {}
    try:
        return effective(section, overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise WsError(f"[workspaces.{workspace.name}.incus] in {ctx.config.source}: {problems}") from None


def api_for(ctx: Context, workspace: Workspace) -> Api:
    return connect(settings_for(ctx, workspace))


def create(ctx: Context, workspace: Workspace, attachment: NetworkAttachment) -> None:
    from ws import hostshare
    from ws.state import installation_of

    settings = settings_for(ctx, workspace)
    api = connect(settings)
    bundle = ctx.provisioning(workspace, attachment)
    hostshare.protect(workspace)
    source, image_hash = _source(ctx, api, workspace)
    sharing = instances.Sharing(shift=_shift(api, settings), uid=bundle.user.uid, gid=bundle.user.gid)
    isolation = instances.Isolation(guest_to_guest=ctx.config.core.network.guest_to_guest)
    body = instances.create_body(
        workspace, attachment, settings, source.body, source.label, list(bundle.mounts), sharing,
        pool=settings.storage_pool or instances.default_pool(api), installation=installation_of(workspace.paths),
        isolation=isolation,
    )  # fmt: skip
    detached = instances.replace(api, workspace, body)
    _after_start[workspace.name] = (body, detached)
    delivery.deliver(api, workspace.instance_name, bundle, [] if sharing.shift else _host_key_files(workspace))
    if image_hash is not None:
        images.remove_unused(api, workspace.image, keep=image_hash)


def start(ctx: Context, workspace: Workspace) -> None:
    settings = settings_for(ctx, workspace)
    api = connect(settings)
    instances.start(api, workspace)
    readiness.wait_until_ready(api, workspace, settings.ready_timeout)
    body, detached = _after_start.pop(workspace.name, (None, []))
    instances.delete_in_background(api, detached)
    if settings.standby and body is not None:
        ctx.defer(lambda: _make_standby(ctx, workspace, body))


def _make_standby(ctx: Context, workspace: Workspace, body: dict) -> None:
    """Ask the daemon for the next instance once the command's workspaces are all up (unpacking the image
    would slow down the ones still starting), if the workspace still runs: a ``ws down`` in between must
    not be followed by a stray ``-next`` instance. If another ws holds the workspace's lock, it is changing
    the workspace and makes the next instance itself should it leave it running."""
    from ws.locking import LockTimeout

    try:
        with ctx.lock("workspace", workspace.name, timeout=0):
            api = api_for(ctx, workspace)
            instance = instances.get(api, workspace)
            if instance is not None and instances.owned(instance, workspace) and instance.get("status") == "Running":
                instances.create_next_in_background(api, workspace, body)
    except LockTimeout:
        return


def stop(ctx: Context, workspace: Workspace) -> None:
    """Delete the instance, the next one made ahead of time and old ones still being deleted: nothing of
    the workspace stays in Incus."""
    api = api_for(ctx, workspace)
    instances.ensure_absent(api, workspace)
    standby = dataclasses.replace(workspace, instance_name=instances.next_name(workspace))
    instances.wait_for_operations(api, standby.instance_name)  # one being created may not exist yet
    instances.ensure_absent(api, standby)
    instances.remove_detached(api, workspace)


def destroy(ctx: Context, workspace: Workspace) -> None:
    """Delete the instance and ws's images of the workspace's image that no instance uses any more."""
    from ws import hostshare
    from ws.images import is_ws_image

    stop(ctx, workspace)
    hostshare.release(workspace)
    api = api_for(ctx, workspace)
    if is_ws_image(workspace.image):
        images.remove_unused(api, workspace.image, keep=None)


def status(ctx: Context, workspace: Workspace) -> WorkspaceStatus:
    api = api_for(ctx, workspace)
    instance = instances.get(api, workspace)
    if instance is None:
        return WorkspaceStatus(State.ABSENT, f"no instance {workspace.instance_name} on {api.endpoint}")
    if not instances.owned(instance, workspace):
        return WorkspaceStatus(
            State.ERROR, f"{workspace.instance_name} on {api.endpoint} exists but was not created by ws"
        )
    state = instance.get("state") or {}
    status_text = (instance.get("status") or "").lower()
    started = _timestamp(state.get("started_at")) if status_text == "running" else None
    location = instance.get("location") if instance.get("location") not in (None, "", "none") else None
    detail = f"{workspace.instance_name} on {location or api.endpoint}"
    if started is not None:
        detail += f", up {_duration(time.time() - started)}"
    return WorkspaceStatus(
        STATES.get(status_text, State.ERROR),
        detail if status_text in STATES else f"{detail}: Incus reports {instance.get('status')}",
        ip=_address(state),
        image=(instance.get("config") or {}).get(instances.IMAGE_KEY),
        started_at=started,
        extra={"instance": workspace.instance_name, "endpoint": api.endpoint, "location": location},
    )


def _source(ctx: Context, api: Api, workspace: Workspace) -> tuple[images.Source, str | None]:
    """The create request's source, and the image hash when it is ws's own image."""
    from ws.images import is_ws_image

    if not is_ws_image(workspace.image):
        return images.reference_source(api, workspace.image), None
    built = _built_image(ctx, workspace.image)
    lock = ctx.lock("image", f"incus-{built.name}")
    return images.ws_source(api, built, lock), built.hash


def _built_image(ctx: Context, name: str):
    """ws's build of ``name`` for containers; a cached build of the same recipe plus a kernel (made for
    microVMs) is taken as it is rather than building a second image: the kernel is inert in a container."""
    from ws.images import current_image, ensure_image, recipe_for

    recipe = recipe_for(ctx.config.core, name)
    for candidate in (recipe, recipe_for(ctx.config.core, name, with_kernel=True)):
        if (cached := current_image(ctx.state.root, candidate)) is not None:
            return cached
    return ensure_image(ctx.state.root, recipe, progress=lambda phase: print(f"image {name}: {phase}", file=sys.stderr))


def _shift(api: Api, settings: IncusSettings) -> bool:
    if settings.shift is not None:
        return settings.shift
    return api.info.get("environment", {}).get("kernel_features", {}).get("idmapped_mounts") == "true"


def _host_key_files(workspace: Workspace) -> list[tuple[str, bytes, int]]:
    """Without idmapped mounts the host key folder cannot be shared; its files are pushed instead."""
    folder = workspace.paths.ssh_host_keys
    return [
        (f"{instances.HOST_KEYS_GUEST_DIR}/{path.name}", path.read_bytes(), path.stat().st_mode & 0o777)
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.startswith(".")
    ]


def _address(state: dict) -> str | None:
    nic = (state.get("network") or {}).get(instances.NIC) or {}
    return next((a["address"] for a in nic.get("addresses") or () if a.get("family") == "inet"), None)


def _timestamp(text: str | None) -> float | None:
    if not text or text.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"
