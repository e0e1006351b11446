"""The image cache: content-addressed builds under ``<state_dir>/images/<name>/<hash>/``.

A build happens under the image's lock in ``.tmp-<hash>-<pid>/`` beside its final folder and is renamed into
place only when every file is written and synced, so a folder named by a hash is always complete: a killed
build leaves only a temporary folder, which the next build removes once its owner process is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ws import locking
from ws.errors import UsageError
from ws.images.build import INITRD, KERNEL, ROOTFS, BuildFunction, Progress
from ws.images.recipe import Recipe
from ws.mounts import remove_tree

IMAGES_DIR = "images"
MANIFEST = "manifest.json"
TMP_DIR = re.compile(r"^\.tmp-([0-9a-f]+)-(\d+)$")
HASH_DIR = re.compile(r"^[0-9a-f]{16}$")
LOCK_TIMEOUT = 3600.0
"""A waiting build waits for the one in progress (which it then reuses) rather than failing."""


@dataclass(frozen=True)
class BuiltImage:
    """One complete build in the cache: what a backend imports or boots."""

    name: str
    hash: str
    path: Path
    rootfs_tar: Path
    kernel: Path | None
    initrd: Path | None
    manifest: dict = field(compare=False, repr=False)
    fresh: bool = field(default=False, compare=False)
    """True when this call built it; False when it came from the cache."""

    @property
    def size(self) -> int:
        return int(self.manifest["size"])

    @property
    def created(self) -> str:
        return str(self.manifest["created"])

    @property
    def recipe(self) -> Recipe:
        return Recipe.from_dict(self.manifest["recipe"])


def images_dir(state_dir: Path, name: str | None = None) -> Path:
    root = state_dir / IMAGES_DIR
    return root if name is None else root / name


def ensure_image(
    state_dir: Path,
    recipe: Recipe,
    *,
    progress: Progress | None = None,
    build: BuildFunction | None = None,
) -> BuiltImage:
    """The build of ``recipe``: from the cache when present, else built now (once, even when several ws
    processes ask at the same time: they wait on the image lock and then find it in the cache)."""
    if build is None:
        from ws.images.build import mmdebstrap_build as build
    report: Progress = progress or (lambda _phase: None)
    cached = current_image(state_dir, recipe)  # hash folders appear complete or not at all: no lock needed
    if cached is not None:
        return cached
    with locking.lock(state_dir, "image", recipe.name, timeout=LOCK_TIMEOUT):
        cached = current_image(state_dir, recipe)
        if cached is not None:
            return cached
        clean_stale(state_dir, recipe.name)
        return _build(state_dir, recipe, report, build)


def current_image(state_dir: Path, recipe: Recipe) -> BuiltImage | None:
    """The cached build of ``recipe``, or None (never builds)."""
    return _load(images_dir(state_dir, recipe.name) / recipe.hash)


def list_images(state_dir: Path) -> list[BuiltImage]:
    """Every complete build in the cache, by name then age (temporary folders are not images)."""
    root = images_dir(state_dir)
    found = [
        image
        for folder in (sorted(root.glob("*/*")) if root.is_dir() else [])
        if HASH_DIR.match(folder.name) and (image := _load(folder)) is not None
    ]
    return sorted(found, key=lambda image: (image.name, image.created))


def remove_image(state_dir: Path, name: str, hashes: Iterable[str] | None = None) -> list[str]:
    """Remove builds of ``name`` (``hashes``, or all when None); returns the hashes removed."""
    folder = images_dir(state_dir, name)
    with locking.lock(state_dir, "image", name, timeout=LOCK_TIMEOUT):
        present = sorted(p.name for p in folder.iterdir() if HASH_DIR.match(p.name)) if folder.is_dir() else []
        wanted = present if hashes is None else list(dict.fromkeys(hashes))
        unknown = [h for h in wanted if h not in present]
        if unknown:
            have = ", ".join(present) or "none"
            raise UsageError(f"image {name} has no build {', '.join(unknown)} (builds: {have})")
        for image_hash in wanted:
            remove_tree(folder / image_hash)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        return wanted


def clean_stale(state_dir: Path, name: str) -> list[Path]:
    """Remove temporary build folders of ``name`` whose owner process is gone; returns what was removed."""
    folder = images_dir(state_dir, name)
    removed = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        match = TMP_DIR.match(path.name)
        if match and not _alive(int(match.group(2))):
            remove_tree(path)
            removed.append(path)
    return removed


def _build(state_dir: Path, recipe: Recipe, progress: Progress, build: BuildFunction) -> BuiltImage:
    parent = images_dir(state_dir, recipe.name)
    parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    final = parent / recipe.hash
    if final.exists():  # a folder without a valid manifest: not ours to trust, rebuild it
        remove_tree(final)
    tmp = parent / f".tmp-{recipe.hash}-{os.getpid()}"
    if tmp.exists():
        remove_tree(tmp)
    tmp.mkdir(mode=0o755)  # apt downloads as _apt, which must be able to enter mmdebstrap's tree in here
    try:
        build(recipe, tmp, progress)
        progress("writing metadata and checksums")
        created = int(time.time())
        manifest = _manifest(recipe, tmp, created)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _sync_folder(tmp)
        os.rename(tmp, final)
        _fsync(parent)
    except BaseException:
        remove_tree(tmp)
        raise
    image = _load(final, fresh=True)
    assert image is not None, f"{final} was just written"
    progress("done")
    return image


def _manifest(recipe: Recipe, folder: Path, created: int) -> dict:
    files = {
        path.name: {"size": path.stat().st_size, "sha256": _sha256(path)}
        for path in sorted(folder.iterdir())
        if path.is_file()
    }
    return {
        "name": recipe.name,
        "hash": recipe.hash,
        "recipe": recipe.to_dict(),
        "created": datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z"),
        "size": sum(entry["size"] for entry in files.values()),
        "files": files,
    }


def _load(folder: Path, fresh: bool = False) -> BuiltImage | None:
    """The build in ``folder`` if its manifest is readable and names files that are all there."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
        if manifest["hash"] != folder.name or ROOTFS not in files:
            return None
        if any((folder / name).stat().st_size != entry["size"] for name, entry in files.items()):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return BuiltImage(
        name=manifest["name"],
        hash=manifest["hash"],
        path=folder,
        rootfs_tar=folder / ROOTFS,
        kernel=folder / KERNEL if KERNEL in files else None,
        initrd=folder / INITRD if INITRD in files else None,
        manifest=manifest,
        fresh=fresh,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _sync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            _fsync(path)
    _fsync(folder)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
