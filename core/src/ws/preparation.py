"""What core prepares for a backend before ``ws_create``: the image and the whole create request.

Kept apart from :mod:`ws.types` because the request carries the provisioning bundle, which itself is
built from the types (so ``ws.types`` stays at the bottom of the import graph).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ws.provision.bundle import Bundle
from ws.types import NetworkAttachment

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class PreparedImage:
    """The image a workspace is created from, prepared by core before ``ws_create``.

    For ws's own images (``reference`` is None): the cached build with its root file system tarball and,
    for types that boot a kernel, the kernel and initrd. For any other ``image`` value: only ``name`` and
    ``reference`` (the backend resolves it, e.g. an Incus remote image).
    """

    name: str
    hash: str | None = None
    directory: Path | None = None
    rootfs_tar: Path | None = None
    kernel: Path | None = None
    initrd: Path | None = None
    reference: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Facts about ws's build (``os``, ``release``, ``architecture`` in Debian's naming, ``created``)."""

    @property
    def identity(self) -> str:
        """What the restartIfChanged fingerprint records of the image."""
        return f"{self.name}@{self.hash}" if self.hash else f"ref:{self.reference}"


@dataclass(frozen=True)
class CreateRequest:
    """Everything core prepared for ``ws_create``: where to plug in, what to boot, what to put in."""

    attachment: NetworkAttachment
    image: PreparedImage
    bundle: Bundle
