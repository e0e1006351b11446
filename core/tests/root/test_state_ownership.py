"""Root tier: the per-workspace host folders get their real owners (the login user for the shared work
and agent folders, root for the host keys) as ``ws up`` creates them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ws.state import ensure_workspace_dirs, workspace_paths

pytestmark = pytest.mark.root

UID, GID = 4242, 4343


def owner_and_mode(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


def test_owners_and_modes(tmp_path: Path) -> None:
    paths = workspace_paths(tmp_path / "state", "dev")
    ensure_workspace_dirs(paths, UID, GID)
    assert owner_and_mode(paths.root) == (0, GID, 0o750)  # the login group only: out of other users' reach
    assert owner_and_mode(paths.ssh_host_keys) == (0, 0, 0o700)
    assert owner_and_mode(paths.work) == (UID, GID, 0o755)
    assert owner_and_mode(paths.agent) == (UID, GID, 0o700)


def test_wrong_owners_and_modes_are_repaired(tmp_path: Path) -> None:
    paths = workspace_paths(tmp_path / "state", "dev")
    ensure_workspace_dirs(paths, UID, GID)
    os.chown(paths.ssh_host_keys, UID, GID)
    os.chmod(paths.ssh_host_keys, 0o777)
    os.chown(paths.work, 0, 0)
    ensure_workspace_dirs(paths, UID, GID)
    assert owner_and_mode(paths.ssh_host_keys) == (0, 0, 0o700)
    assert owner_and_mode(paths.work) == (UID, GID, 0o755)


def test_gid_defaults_to_uid(tmp_path: Path) -> None:
    paths = workspace_paths(tmp_path / "state", "dev")
    ensure_workspace_dirs(paths, UID, None)  # type: ignore[arg-type]
    assert owner_and_mode(paths.work)[:2] == (UID, UID)
