"""Which image an instance is created from: ws's own (imported once per content hash) or an Incus reference.

``image = "debian-bookworm"`` names ws's image: core builds it (content-addressed cache), and it is
imported into Incus under the alias ``ws-debian-bookworm-<hash>``. The Incus fingerprint of a split image
is the sha256 of metadata tarball + rootfs tarball, so ws computes it before uploading: an import that a
crash cut off between upload and alias is finished by adding the alias, never uploaded twice. Older ws
images of the same name are removed once no instance was created from them. Any other ``image`` value is
an Incus reference: ``REMOTE:ALIAS`` (``images:debian/12``) pulls from an image server, a bare value is
an alias or fingerprint on the server itself.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ws.errors import WsError

from ws_plugin_incus.errors import NotFound

if TYPE_CHECKING:
    from pathlib import Path

    from ws.api import PreparedImage

    from ws_plugin_incus.client import Api

NAME_PROPERTY = "ws.name"
HASH_PROPERTY = "ws.hash"
FINGERPRINT = re.compile(r"^[0-9a-f]{12,64}$")


@dataclass(frozen=True)
class Source:
    """The ``source`` of the create request and a label recorded on the instance."""

    body: dict
    label: str


def alias_for(name: str, image_hash: str) -> str:
    return f"ws-{name}-{image_hash}"


def ws_source(api: Api, built: PreparedImage, metadata: Path, lock) -> Source:
    """The source for ws's built image, importing it first if the server lacks it (under ``lock``)."""
    alias = alias_for(built.name, built.hash)
    if not _has_alias(api, alias):
        with lock:
            if not _has_alias(api, alias):
                import_image(api, built, metadata, alias)
    return Source({"type": "image", "alias": alias}, alias)


def reference_source(api: Api, ref: str) -> Source:
    """The source for an Incus image reference (``images:debian/12``, an alias, a fingerprint)."""
    remote, sep, name = ref.partition(":")
    if sep:
        server = api.settings.image_remote(remote)
        if server is None:
            raise WsError(
                f"image {ref!r}: ws does not know the image server {remote!r}; add it as "
                f'[incus.remotes.{remote}] url = "https://..." (known: images)'
            )
        url, protocol = server
        return Source({"type": "image", "mode": "pull", "server": url, "protocol": protocol, "alias": name}, ref)
    key = "fingerprint" if FINGERPRINT.match(ref) else "alias"
    return Source({"type": "image", key: ref}, ref)


def import_image(api: Api, built: PreparedImage, metadata: Path, alias: str) -> None:
    """Upload the split image (streamed, not read into memory) and alias it.

    Another ws (another state directory, or another host of a cluster) may import the same image at the
    same moment; losing that race is success, not an error.
    """
    fingerprint = split_fingerprint(metadata, built.rootfs_tar)
    if not _exists(api, f"images/{fingerprint}"):
        try:
            _upload(api, built, metadata)
        except WsError:
            if not _exists(api, f"images/{fingerprint}"):
                raise
    try:
        api.request(
            "post", "images/aliases", f"naming image {fingerprint[:12]} {alias}",
            json={"name": alias, "target": fingerprint, "description": f"ws image {built.name} {built.hash}"},
        )  # fmt: skip
    except WsError:
        if not _has_alias(api, alias):
            raise


def split_fingerprint(metadata: Path, rootfs: Path) -> str:
    digest = hashlib.sha256()
    for path in (metadata, rootfs):
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _upload(api: Api, built: PreparedImage, metadata_path: Path) -> None:
    from requests_toolbelt import MultipartEncoder

    with metadata_path.open("rb") as metadata, built.rootfs_tar.open("rb") as rootfs:
        encoder = MultipartEncoder(
            fields={
                "metadata": ("incus-metadata.tar", metadata, "application/octet-stream"),
                "rootfs": ("rootfs.tar", rootfs, "application/octet-stream"),
            }
        )
        api.request(
            "post", "images", f"importing ws image {built.name} {built.hash} into Incus",
            data=encoder, headers={"Content-Type": encoder.content_type},
        )  # fmt: skip


def _has_alias(api: Api, alias: str) -> bool:
    return _exists(api, f"images/aliases/{alias}")


def _exists(api: Api, path: str) -> bool:
    try:
        api.get(path, f"reading {path}")
    except NotFound:
        return False
    return True


def remove_unused(api: Api, name: str, keep: str | None) -> list[str]:
    """Delete ws's images of ``name`` (except the one with hash ``keep``) that no instance was created
    from; returns the hashes removed."""
    images = api.get("images", "listing images", recursion=1) or []
    instances = api.get("instances", "listing instances", recursion=1) or []
    in_use = {(i.get("config") or {}).get("volatile.base_image") for i in instances}
    removed = []
    for image in images:
        properties = image.get("properties") or {}
        if properties.get(NAME_PROPERTY) != name or properties.get(HASH_PROPERTY) == keep:
            continue
        if image["fingerprint"] in in_use:
            continue
        try:
            api.request(
                "delete", f"images/{image['fingerprint']}", f"removing old ws image {image['fingerprint'][:12]}"
            )
        except NotFound:
            continue  # a concurrent run removed it first
        removed.append(properties.get(HASH_PROPERTY, image["fingerprint"]))
    return removed
