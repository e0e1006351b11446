"""The metadata half of the split image Incus imports: made by the plugin from core's prepared image, the
same bytes every time (the split image's fingerprint depends on them)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from ws.preparation import PreparedImage
from ws_plugin_incus.metadata import metadata_tar

IMAGE = PreparedImage(
    name="debian-bookworm",
    hash="0123456789abcdef",
    rootfs_tar=Path("/nonexistent/rootfs.tar"),
    properties={"os": "debian", "release": "bookworm", "architecture": "amd64", "created": "2026-12-01T10:00:00Z"},
)


def test_the_tarball_holds_only_metadata_yaml_with_incus_names(tmp_path: Path) -> None:
    path = metadata_tar(IMAGE, tmp_path)
    with tarfile.open(path) as tar:
        assert tar.getnames() == ["metadata.yaml"]
        lines = tar.extractfile("metadata.yaml").read().decode().splitlines()
    fields = dict(line.split(": ", 1) for line in lines if not line.startswith(" ") and ": " in line)
    assert json.loads(fields["architecture"]) == "x86_64", "Debian's amd64 is Incus's x86_64"
    assert int(fields["creation_date"]) == 1796119200
    assert '  ws.hash: "0123456789abcdef"' in lines and '  release: "bookworm"' in lines


def test_the_tarball_is_the_same_bytes_every_time(tmp_path: Path) -> None:
    first = metadata_tar(IMAGE, tmp_path / "a").read_bytes()
    second = metadata_tar(IMAGE, tmp_path / "b").read_bytes()
    assert first == second
