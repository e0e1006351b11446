"""Host state: per-workspace folders with their modes (owners are checked by the root tier), nothing
secret readable by others, atomic writes and leases."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from ws import state


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def paths(tmp_path: Path):
    return state.workspace_paths(tmp_path / "state", "dev")


def test_layout(tmp_path: Path) -> None:
    paths = state.workspace_paths(tmp_path, "dev")
    assert paths.root == tmp_path / "workspaces" / "dev"
    assert (paths.work, paths.ssh_host_keys, paths.agent) == (
        paths.root / "workspace",
        paths.root / "ssh-host-keys",
        paths.root / "agent",
    )


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_folders_get_their_modes_whatever_the_umask(paths, umask: int) -> None:
    old = os.umask(umask)
    try:
        state.ensure_workspace_dirs(paths, os.getuid(), os.getgid())
    finally:
        os.umask(old)
    assert mode(paths.root) == 0o750  # what guests leave in the shared folders is out of other users' reach
    assert mode(paths.work) == 0o755
    assert mode(paths.ssh_host_keys) == 0o700
    assert mode(paths.agent) == 0o700


def test_private_folders_are_not_readable_by_others(paths) -> None:
    state.ensure_workspace_dirs(paths, os.getuid(), os.getgid())
    for private in (paths.ssh_host_keys, paths.agent):
        assert mode(private) & 0o077 == 0, private  # the host key and the agent's settings stay private


def test_existing_folders_are_repaired_and_contents_kept(paths) -> None:
    state.ensure_workspace_dirs(paths, os.getuid(), os.getgid())
    (paths.work / "notes.txt").write_text("keep me")
    (paths.ssh_host_keys / "ssh_host_ed25519_key").write_text("key")
    os.chmod(paths.ssh_host_keys, 0o755)
    os.chmod(paths.agent, 0o777)
    state.ensure_workspace_dirs(paths, os.getuid(), os.getgid())
    assert (mode(paths.ssh_host_keys), mode(paths.agent)) == (0o700, 0o700)
    assert (paths.work / "notes.txt").read_text() == "keep me"
    assert (paths.ssh_host_keys / "ssh_host_ed25519_key").read_text() == "key"


def test_owners_are_the_callers_when_not_root(paths) -> None:
    """As root the folders are chowned (root tier: tests/root/test_state_ownership.py); either way the
    shared folders end up owned by the uid asked for when that is the caller."""
    state.ensure_workspace_dirs(paths, os.getuid(), os.getgid())
    assert paths.work.stat().st_uid == os.getuid() and paths.agent.stat().st_uid == os.getuid()


def test_remove_workspace_dirs_removes_that_workspace_only(tmp_path: Path) -> None:
    dev, other = state.workspace_paths(tmp_path, "dev"), state.workspace_paths(tmp_path, "other")
    for paths in (dev, other):
        state.ensure_workspace_dirs(paths, os.getuid(), os.getgid())
    state.write_leases(tmp_path, {"dev": "192.168.83.10"})
    state.remove_workspace_dirs(dev)
    state.remove_workspace_dirs(dev)  # absent: no error
    assert not dev.root.exists() and other.work.is_dir() and (tmp_path / state.LEASES_FILE).exists()


def test_leases_round_trip_and_mode(tmp_path: Path) -> None:
    state.write_leases(tmp_path, {"b": "192.168.83.11", "a": "192.168.83.10"})
    path = tmp_path / state.LEASES_FILE
    assert json.loads(path.read_text()) == {"a": "192.168.83.10", "b": "192.168.83.11"}
    assert mode(path) == 0o644  # addresses are not secret
    assert {n: str(ip) for n, ip in state.read_leases(tmp_path).items()} == {"a": "192.168.83.10", "b": "192.168.83.11"}


@pytest.mark.parametrize("content", ["", "{", "[1, 2]", '{"a": "not-an-ip"}'])
def test_broken_leases_mean_none(tmp_path: Path, content: str) -> None:
    (tmp_path / state.LEASES_FILE).write_text(content)
    assert state.read_leases(tmp_path) == {}


def test_atomic_write_sets_the_mode_before_the_content_is_visible(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "secret"
    state.atomic_write(target, b"one", 0o600)
    assert target.read_bytes() == b"one" and mode(target) == 0o600
    state.atomic_write(target, b"two", 0o600)
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["secret"]  # no temporary file left


def test_atomic_write_failure_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "file"
    state.atomic_write(target, b"old", 0o644)

    def fail(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        state.atomic_write(target, b"new", 0o644)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
