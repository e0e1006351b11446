"""The ext4 base made from a root file system tarball with the real mkfs.ext4 (no mount needed): built once
when several ``ws up`` ask at the same time, the image's ids and kernel configuration kept next to it, a
killed build's scratch folder cleaned away, unused bases removed."""

from __future__ import annotations

import io
import subprocess
import tarfile
import threading
from pathlib import Path

from ws.locking import file_lock
from ws_plugin_microvm import disk


def _rootfs_tar(path: Path) -> Path:
    files = {
        "./etc/passwd": b"root:x:0:0::/root:/bin/sh\n",
        "./etc/group": b"root:x:0:\n",
        "./boot/config-6.1.0": b"CONFIG_ACPI=y\nCONFIG_VIRTIO_MMIO=m\n",
        "./usr/bin/tool": b"#!/bin/sh\n",
    }
    with tarfile.open(path, "w") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o755 if "bin" in name else 0o644
            archive.addfile(info, io.BytesIO(content))
    return path


def test_concurrent_requests_build_one_base_with_its_side_files(tmp_path):
    tar = _rootfs_tar(tmp_path / "rootfs.tar")
    plugin_dir = tmp_path / "microvm"
    stale = plugin_dir / disk.BASES / ".tmp-abc-2-999999999"  # a killed build (no such process)
    stale.mkdir(parents=True)
    results: list[Path] = []

    def build() -> None:
        results.append(disk.ensure_base(plugin_dir, tar, "abc", 2, file_lock(tmp_path / "image.lock")))

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    base = disk.base_path(plugin_dir, "abc", 2)
    assert results == [base] * 3 and base.stat().st_size == 2 * 1024**3
    assert base.stat().st_mode & 0o777 == 0o444 and not stale.exists()
    assert sorted(p.name for p in base.parent.iterdir()) == [
        f"abc-2g.{s}" for s in ("ext4", "group", "kconfig", "passwd")
    ]
    assert disk.guest_ids_text(base)[0].startswith("root:x:0:0")
    assert "CONFIG_VIRTIO_MMIO=m" in disk.kernel_config(base)
    listing = subprocess.run(["debugfs", "-R", "ls -l /usr/bin", str(base)], capture_output=True, text=True)
    assert "tool" in listing.stdout  # the tree really is inside the file system
    assert disk.remove_unused_bases(plugin_dir, keep=set()) == [base]
    assert list(base.parent.iterdir()) == []
