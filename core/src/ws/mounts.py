"""Removing folders that may have mounts inside (an image build's /proc, a container's overlay root)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from ws.errors import WsError


def remove_tree(path: Path) -> None:
    """rmtree that first detaches every mount below ``path``, deepest first; never recurses into a mount."""
    for mount_point in mounts_below(path):
        subprocess.run(["umount", "--lazy", mount_point], check=False, capture_output=True)
    if left := mounts_below(path):
        raise WsError(f"cannot remove {path}: {left[0]} is still mounted; unmount it and retry")
    shutil.rmtree(path, ignore_errors=True)


def mounts_below(path: Path) -> list[str]:
    """Mount points strictly below ``path`` in this mount namespace, deepest first."""
    prefix = str(path.resolve()) + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    points = [_unescape(line.split()[4]) for line in lines]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def _unescape(field_text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_text)
