"""The metadata half of an Incus "split" image: ``incus image import incus-metadata.tar rootfs.tar``.

Incus needs only ``metadata.yaml`` (architecture, creation date, properties); templates are not used because
ws provisions guests itself. The YAML is written by hand (JSON-quoted strings are valid YAML) so no YAML
library is needed. The tarball is made from the image's own facts (its creation time included), so it is
byte for byte the same every time and the split image's fingerprint stays stable.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from datetime import datetime
from pathlib import Path

from ws.api import PreparedImage

INCUS_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}
"""Debian's architecture names -> Incus's."""


def metadata_yaml(image: PreparedImage) -> str:
    facts = image.properties
    properties = {
        "description": f"ws {image.name} {image.hash}",
        "os": facts.get("os", "debian"),
        "release": facts.get("release", ""),
        "architecture": facts.get("architecture", ""),
        "variant": "ws",
        "ws.name": image.name,
        "ws.hash": image.hash,
    }
    architecture = facts.get("architecture", "")
    lines = [
        f"architecture: {json.dumps(INCUS_ARCH.get(architecture, architecture))}",
        f"creation_date: {_created(image)}",
        "properties:",
        *(f"  {key}: {json.dumps(value)}" for key, value in properties.items()),
    ]
    return "\n".join(lines) + "\n"


def metadata_tar(image: PreparedImage, cache: Path) -> Path:
    """``<cache>/<name>-<hash>.tar``, written once (atomically) per image."""
    path = cache / f"{image.name}-{image.hash}.tar"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    content = metadata_yaml(image).encode()
    info = tarfile.TarInfo("metadata.yaml")
    info.size, info.mode, info.mtime = len(content), 0o644, _created(image)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with tarfile.open(tmp, "w") as tar:
        tar.addfile(info, io.BytesIO(content))
    os.replace(tmp, path)
    return path


def _created(image: PreparedImage) -> int:
    text = image.properties.get("created")
    if not text:
        return 0
    return int(datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp())
