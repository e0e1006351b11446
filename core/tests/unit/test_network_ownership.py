"""Which configuration owns a bridge: the mark ws writes into the bridge's alias, read from a fake sysfs
(the real kernel objects are in core/tests/root/test_network.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ws.errors import WsError
from ws.network import bridge


@pytest.fixture
def sysfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``alias(name, text)`` creates /sys/class/net/NAME/ifalias in a temporary folder."""
    root = tmp_path / "sys-class-net"
    monkeypatch.setattr(bridge, "SYSFS_NET", root)

    def alias(name: str, text: str) -> None:
        (root / name).mkdir(parents=True)
        (root / name / "ifalias").write_text(text + "\n")

    return alias


def _state_dir(tmp_path: Path, name: str, bridge_name: str | None = "sandbox-br") -> Path:
    """A state directory; with ``bridge_name`` it holds that bridge's network files, as after ``network up``."""
    path = tmp_path / name
    (path / "network" / (bridge_name or "")).mkdir(parents=True)
    return path


def test_the_mark_names_the_state_directory() -> None:
    assert bridge.owner_alias(Path("/var/lib/ws")) == "managed by ws for /var/lib/ws"


def test_no_interface_or_own_bridge_is_fine(sysfs, tmp_path: Path) -> None:
    mine = _state_dir(tmp_path, "mine")
    bridge.check_owner("sandbox-br", mine)
    sysfs("sandbox-br", bridge.owner_alias(mine))
    bridge.check_owner("sandbox-br", mine)


def test_a_bare_mark_is_the_default_state_directorys(sysfs, tmp_path: Path, monkeypatch) -> None:
    """Written before the mark named its state directory: the default configuration's, like an unnamed
    /etc/hosts block."""
    default = _state_dir(tmp_path, "default")
    monkeypatch.setattr(bridge, "DEFAULT_STATE_DIR", default)
    sysfs("sandbox-br", "managed by ws")
    bridge.check_owner("sandbox-br", default)
    with pytest.raises(WsError, match=f"the one with state directory {default} "):
        bridge.check_owner("sandbox-br", _state_dir(tmp_path, "tests", None))


def test_another_configurations_bridge_is_refused_with_its_state_directory(sysfs, tmp_path: Path) -> None:
    theirs, mine = _state_dir(tmp_path, "theirs"), _state_dir(tmp_path, "mine", None)
    sysfs("sandbox-br", bridge.owner_alias(theirs))
    with pytest.raises(WsError) as error:
        bridge.check_owner("sandbox-br", mine)
    assert str(error.value).startswith(
        f"bridge sandbox-br belongs to another ws configuration, the one with state directory {theirs} "
    )
    assert f"state directory {mine}" in str(error.value) and "[network] bridge and subnet" in str(error.value)


def test_a_bridge_whose_state_directory_lost_its_network_is_taken_over(sysfs, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    sysfs("sandbox-br", bridge.owner_alias(gone))
    bridge.check_owner("sandbox-br", _state_dir(tmp_path, "mine", None))


def test_an_interface_without_the_mark_is_somebody_elses(sysfs, tmp_path: Path) -> None:
    sysfs("docker0", "")
    with pytest.raises(WsError, match="interface docker0 exists but was not created by ws"):
        bridge.check_owner("docker0", _state_dir(tmp_path, "mine"))
