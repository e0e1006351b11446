"""The nspawn command line: unprivileged, bridged, idmapped binds, and paths nspawn cannot express refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from ws.types import Mount
from ws_plugin_nspawn.machine import nspawn_argv


def _argv(mounts=(), register=False):
    return nspawn_argv(
        "/usr/bin/systemd-nspawn", machine="dev", hostname="workspace-dev", root=Path("/s/machines/dev/root"),
        shift=0x70010000, bridge="sandbox-br", mounts=mounts, register=register,
    )  # fmt: skip


def test_the_container_is_unprivileged_bridged_and_booted():
    argv = _argv()
    assert "--boot" in argv and "--register=no" in argv and "--keep-unit" in argv
    assert f"--private-users={0x70010000}:65536" in argv and "--private-users-ownership=off" in argv
    assert "--network-bridge=sandbox-br" in argv and "--machine=dev" in argv
    assert argv[-2:] == ["--", "--show-status=yes"]
    assert "--register=yes" in _argv(register=True)


def test_binds_are_idmapped_and_read_only_ones_stay_read_only():
    argv = _argv(
        [Mount(Path("/w/dev/workspace"), "/home/u/workspace"), Mount(Path("/w/keys"), "/etc/ssh-host-keys", True)]
    )
    assert "--bind=/w/dev/workspace:/home/u/workspace:idmap" in argv
    assert "--bind-ro=/w/keys:/etc/ssh-host-keys:idmap" in argv


def test_a_path_with_a_colon_is_refused():
    with pytest.raises(ValueError, match="':'"):
        _argv([Mount(Path("/w/a:b"), "/mnt")])
