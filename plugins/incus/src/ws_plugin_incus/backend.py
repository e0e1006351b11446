"""What each backend hook does with Incus; :mod:`ws_plugin_incus.plugin` only forwards to here.

Core holds the workspace's lock around every call and has created the host folders and the host key
before ``create``. Instances are ephemeral: ``create`` makes a fresh one from the current image on every
``ws up`` and replaces the old one itself (the type sets ``replaces_in_create``, so core does not stop it
first), ``stop`` deletes it. Once the command's workspaces are up, the daemon is asked to make the *next*
instance ahead of time (``[incus] standby``), so re-creating skips unpacking the image.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ws.types import WorkspaceStatus

from ws_plugin_incus import delivery, images, instances, listing, readiness
from ws_plugin_incus.client import Api, connect

if TYPE_CHECKING:
    from ws.api import Context, CreateRequest, NetnsRef, PreparedImage, Workspace

    from ws_plugin_incus.settings import IncusSettings


@dataclass(frozen=True)
class Created:
    """What ``create`` hands to ``start``: the create request (for the standby instance) and the old
    instances to delete once the new one runs (so they do not compete with its start)."""

    body: dict
    detached: list[str]


def settings_for(ctx: Context, workspace: Workspace | None = None) -> IncusSettings:
    """The workspace's options (``[incus]`` with its ``[workspaces.NAME.incus]`` merged over it, validated
    by core with the configuration), or ``[incus]`` alone."""
    from ws_plugin_incus.settings import IncusSettings

    if workspace is not None and workspace.options is not None:
        return workspace.options
    return ctx.config.sections.get("incus") or IncusSettings()


def api_for(ctx: Context, workspace: Workspace) -> Api:
    return connect(settings_for(ctx, workspace))


def create(ctx: Context, workspace: Workspace, request: CreateRequest) -> Created:
    from ws import hostshare
    from ws.state import installation_of

    settings = settings_for(ctx, workspace)
    api = connect(settings)
    bundle = request.bundle
    hostshare.protect(workspace)
    source = _source(ctx, api, request.image)
    sharing = instances.Sharing(shift=_shift(api, settings), uid=bundle.user.uid, gid=bundle.user.gid)
    isolation = instances.Isolation(guest_to_guest=ctx.config.core.network.guest_to_guest)
    body = instances.create_body(
        workspace, request.attachment, settings, source.body, source.label, list(bundle.mounts), sharing,
        pool=settings.storage_pool or instances.default_pool(api), installation=installation_of(workspace.paths),
        isolation=isolation,
    )  # fmt: skip
    ctx.progress(f"{workspace.name}: creating Incus instance {workspace.instance_name}")
    detached = instances.replace(api, workspace, body)
    delivery.deliver(api, workspace.instance_name, bundle, [] if sharing.shift else _host_key_files(workspace))
    if request.image.hash is not None:
        images.remove_unused(api, request.image.name, keep=request.image.hash)
    return Created(body, detached)


def start(ctx: Context, workspace: Workspace, created: Created | None) -> None:
    settings = settings_for(ctx, workspace)
    api = connect(settings)
    instances.start(api, workspace)
    readiness.wait_until_ready(api, workspace, settings.ready_timeout)
    if created is None:
        return
    instances.delete_in_background(api, created.detached)
    if settings.standby:
        ctx.defer(lambda: _make_standby(ctx, workspace, created.body))


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


def netns(ctx: Context, workspace: Workspace) -> NetnsRef | None:
    """The running instance's init process (on a local daemon: a remote one's processes are elsewhere)."""
    from ws.types import NetnsRef

    api = api_for(ctx, workspace)
    instance = instances.get(api, workspace)
    if api.settings.remote or instance is None or not instances.owned(instance, workspace):
        return None
    pid = (instance.get("state") or {}).get("pid")
    return NetnsRef(pid=pid) if pid and (instance.get("status") or "").lower() == "running" else None


def status(ctx: Context, workspace: Workspace) -> WorkspaceStatus:
    api = api_for(ctx, workspace)
    return listing.describe(instances.get(api, workspace), workspace, api.endpoint)


def _source(ctx: Context, api: Api, image: PreparedImage) -> images.Source:
    """The create request's source: ws's image (imported once per content hash) or an Incus reference."""
    from ws_plugin_incus.metadata import metadata_tar

    if image.reference is not None:
        return images.reference_source(api, image.reference)
    metadata = metadata_tar(image, ctx.state.root / "incus" / "metadata")
    lock = ctx.lock("image", f"incus-{image.name}")
    return images.ws_source(api, image, metadata, lock)


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
