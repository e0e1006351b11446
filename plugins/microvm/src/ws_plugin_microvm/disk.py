"""The guest's disk: one read-only ext4 base per image content hash, and a qcow2 overlay per boot.

The base is made without loop mounts: the image's ``rootfs.tar`` is unpacked into a scratch folder and
``mkfs.ext4 -d`` copies that tree (owners, modes, extended attributes such as file capabilities) into a
sparse file of the configured size. It is built under the image lock into a temporary name and renamed
into place, so a killed build leaves no base and two ``ws up`` build it once. The image's
``/etc/passwd`` and ``/etc/group`` (provisioning resolves owner names against them) and its kernel's
configuration (which machine type it can boot) are kept next to it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from contextlib import AbstractContextManager
from pathlib import Path

from ws.errors import WsError
from ws.mounts import remove_tree

BASES = "bases"
SIDE_FILES = ("passwd", "group", "kconfig")
TMP = re.compile(r"^\.tmp-(.+)-(\d+)$")


def base_path(plugin_dir: Path, image_hash: str, disk_gib: int) -> Path:
    return plugin_dir / BASES / f"{image_hash}-{disk_gib}g.ext4"


def ensure_base(
    plugin_dir: Path, rootfs_tar: Path, image_hash: str, disk_gib: int, lock: AbstractContextManager
) -> Path:
    """The base for this image and size, built now when missing."""
    final = base_path(plugin_dir, image_hash, disk_gib)
    if final.exists():
        return final
    with lock:
        if final.exists():
            return final
        final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _remove_stale(final.parent)
        scratch = final.parent / f".tmp-{final.stem}-{os.getpid()}"
        remove_tree(scratch)
        scratch.mkdir(mode=0o700)
        try:
            _build(rootfs_tar, scratch, disk_gib)
            tree = scratch / "tree"
            for name in ("passwd", "group"):
                shutil.copyfile(tree / "etc" / name, _side_file(final, name))
            configs = sorted((tree / "boot").glob("config-*"))
            _side_file(final, "kconfig").write_bytes(configs[-1].read_bytes() if configs else b"")
            os.chmod(scratch / "base.ext4", 0o444)
            os.replace(scratch / "base.ext4", final)
        finally:
            remove_tree(scratch)
    return final


def guest_ids_text(base: Path) -> tuple[str, str]:
    """The image's passwd and group, as saved with the base."""
    return _side_file(base, "passwd").read_text(), _side_file(base, "group").read_text()


def kernel_config(base: Path) -> str:
    """The image kernel's ``/boot/config-*`` (empty when the image has none)."""
    return _side_file(base, "kconfig").read_text(errors="replace")


def _side_file(base: Path, name: str) -> Path:
    return base.with_suffix(f".{name}")


def _build(rootfs_tar: Path, scratch: Path, disk_gib: int) -> None:
    tree = scratch / "tree"
    tree.mkdir()
    _run(["tar", "--extract", "--numeric-owner", "--same-permissions", "--xattrs", "--xattrs-include=*",
          "--file", str(rootfs_tar), "--directory", str(tree)], "unpacking the image")  # fmt: skip
    image = scratch / "base.ext4"
    with open(image, "wb") as sparse:
        sparse.truncate(disk_gib * 1024**3)
    _run(["mkfs.ext4", "-q", "-F", "-L", "wsroot", "-d", str(tree), str(image)], "making the ext4 base")


def _remove_stale(folder: Path) -> None:
    """Scratch folders of builds whose process is gone (a killed ``ws up``)."""
    for path in folder.iterdir():
        match = TMP.match(path.name)
        if match and not Path(f"/proc/{match.group(2)}").exists():
            remove_tree(path)


def create_overlay(base: Path, overlay: Path) -> None:
    """A fresh qcow2 overlay over ``base`` (any earlier one is replaced: every boot starts from the image)."""
    overlay.unlink(missing_ok=True)
    _run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base), str(overlay)], "making the overlay")


def remove_unused_bases(plugin_dir: Path, keep: set[Path]) -> list[Path]:
    """Delete the bases (and their id files) no boot uses; returns them."""
    removed = []
    for base in sorted((plugin_dir / BASES).glob("*.ext4")):
        if base not in keep:
            for path in (base, *(_side_file(base, name) for name in SIDE_FILES)):
                path.unlink(missing_ok=True)
            removed.append(base)
    return removed


def _run(argv: list[str], doing: str) -> None:
    if shutil.which(argv[0]) is None:
        package = {"mkfs.ext4": "e2fsprogs", "qemu-img": "qemu-utils"}.get(argv[0], argv[0])
        raise WsError(f"{doing} needs {argv[0]} (apt-get install {package})")
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise WsError(f"{doing} failed: {argv[0]} exited {result.returncode}: {result.stderr.strip()[-500:]}")
