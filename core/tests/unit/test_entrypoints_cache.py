"""The entry-point cache decides which modules ws imports: root never takes it from a user's folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ws import cache as ws_cache
from ws import entrypoints


@pytest.fixture
def poisoned_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache in the invoking user's XDG folder (as sudo may leave it) naming a module of the user's."""
    user_cache = tmp_path / "user-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(user_cache))
    monkeypatch.setattr(ws_cache, "ROOT_CACHE", str(tmp_path / "root-cache"))
    monkeypatch.delenv("WS_CACHE_DIR", raising=False)
    folder = user_cache / "ws"
    folder.mkdir(parents=True)
    tag = f"{entrypoints.sys.implementation.cache_tag}-{entrypoints.zlib.crc32(entrypoints.sys.prefix.encode()):08x}"
    record = {"name": "evil", "value": "evil_module", "distribution": "evil", "version": "1"}
    data = {"version": entrypoints.CACHE_VERSION, "key": entrypoints._installation_key(), "entry_points": [record]}
    (folder / f"entry-points-ws-{tag}.json").write_text(json.dumps(data))
    return folder


def test_root_never_reads_a_cache_from_the_user_s_folder(
    poisoned_user_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # what root (ws under sudo) reads is the point
    names = [record.name for record in entrypoints.entry_points("ws")]
    assert "evil" not in names
    assert (tmp_path / "root-cache").is_dir()  # root's own cache


def test_a_cache_others_can_write_is_not_trusted(tmp_path: Path) -> None:
    cache = tmp_path / "entry-points.json"
    cache.write_text("{}")
    os.chmod(tmp_path, 0o755)
    os.chmod(cache, 0o644)
    assert ws_cache.trusted(str(cache))
    os.chmod(tmp_path, 0o777)
    assert not ws_cache.trusted(str(cache))
