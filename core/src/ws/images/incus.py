"""The metadata half of an Incus "split" image: ``incus image import incus-metadata.tar rootfs.tar``.

Incus needs only ``metadata.yaml`` (architecture, creation date, properties); templates are not used because
ws provisions guests itself. The YAML is written by hand (JSON-quoted strings are valid YAML) so core needs
no YAML library.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from ws.images.recipe import INCUS_ARCH, Recipe


def metadata_yaml(recipe: Recipe, created: int) -> str:
    properties = {
        "description": f"ws {recipe.name} {recipe.hash}",
        "os": "debian",
        "release": recipe.suite,
        "architecture": recipe.architecture,
        "variant": "ws",
        "ws.name": recipe.name,
        "ws.hash": recipe.hash,
    }
    lines = [
        f"architecture: {json.dumps(INCUS_ARCH.get(recipe.architecture, recipe.architecture))}",
        f"creation_date: {created}",
        "properties:",
        *(f"  {key}: {json.dumps(value)}" for key, value in properties.items()),
    ]
    return "\n".join(lines) + "\n"


def write_incus_metadata(path: Path, recipe: Recipe, created: int) -> None:
    content = metadata_yaml(recipe, created).encode()
    info = tarfile.TarInfo("metadata.yaml")
    info.size, info.mode, info.mtime = len(content), 0o644, created
    with tarfile.open(path, "w") as tar:
        tar.addfile(info, io.BytesIO(content))
