"""ws.network.hostfiles on temporary files: the managed block keeps every other byte, writes are atomic
and keep mode and owner, known_hosts and the NetworkManager drop-in."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ws.errors import WsError
from ws.network import hostfiles
from ws.network.hostfiles import BEGIN, END, HostEntry
from ws.types import Workspace, WorkspacePaths

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHdzLXRlc3Qta2V5LWZvci1ob3N0ZmlsZXMtdW5pdC10ZXN0 comment@x"
ORIGINAL = b"127.0.0.1\tlocalhost\n# a comment   with  spaces \n::1 ip6-localhost\r\n\n10.0.0.5 nas  # trailing\n"
ENTRIES = [HostEntry("workspace-b", "192.168.83.51"), HostEntry("workspace-a", "192.168.83.10", KEY)]


def block_of(lines: list[str]) -> bytes:
    body = "".join(f"{line}\n" for line in [hostfiles.BLOCK_NOTE, *lines]).encode()
    return BEGIN + b"\n" + body + END + b"\n"


def test_block_is_appended_then_replaced_then_removed_byte_for_byte(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_bytes(ORIGINAL)
    assert hostfiles.sync_block(hosts, hostfiles.hosts_lines(ENTRIES))
    assert hosts.read_bytes() == ORIGINAL + block_of(["192.168.83.10 workspace-a", "192.168.83.51 workspace-b"])
    assert not hostfiles.sync_block(hosts, hostfiles.hosts_lines(ENTRIES)), "same content must not rewrite"
    assert hostfiles.sync_block(hosts, ["192.168.83.99 workspace-c"])
    assert hosts.read_bytes() == ORIGINAL + block_of(["192.168.83.99 workspace-c"])
    assert hostfiles.sync_block(hosts, [])
    assert hosts.read_bytes() == ORIGINAL


def test_block_in_the_middle_keeps_what_follows(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    before, after = b"127.0.0.1 localhost\n", b"# added by someone after ws\n1.2.3.4 other\n"
    hosts.write_bytes(before + block_of(["192.168.83.5 workspace-old"]) + after)
    hostfiles.sync_block(hosts, ["192.168.83.6 workspace-new"])
    assert hosts.read_bytes() == before + block_of(["192.168.83.6 workspace-new"]) + after
    hostfiles.sync_block(hosts, [])
    assert hosts.read_bytes() == before + after


def test_file_without_final_newline_gains_only_that(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_bytes(b"127.0.0.1 localhost")
    hostfiles.sync_block(hosts, ["192.168.83.6 workspace-x"])
    assert hosts.read_bytes() == b"127.0.0.1 localhost\n" + block_of(["192.168.83.6 workspace-x"])


def test_missing_file_is_created_and_empty_block_is_no_change(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    assert not hostfiles.sync_block(hosts, [])
    assert not hosts.exists()
    assert hostfiles.sync_block(hosts, ["192.168.83.6 workspace-x"])
    assert stat.S_IMODE(hosts.stat().st_mode) == 0o644


@pytest.mark.parametrize(
    "text",
    [BEGIN + b"\n1.2.3.4 x\n", BEGIN + b"\n" + BEGIN + b"\n" + END + b"\n"],
    ids=["no-end", "two-begins"],
)
def test_broken_markers_are_refused_not_guessed(tmp_path: Path, text: bytes) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_bytes(b"127.0.0.1 localhost\n" + text)
    with pytest.raises(WsError, match="fix the file by hand"):
        hostfiles.sync_block(hosts, ["192.168.83.6 workspace-x"])
    assert hosts.read_bytes() == b"127.0.0.1 localhost\n" + text


def test_end_marker_before_begin_is_ordinary_text() -> None:
    text = END + b"\n127.0.0.1 localhost\n"
    assert hostfiles.replace_block(text, ["1.2.3.4 w"]) == text + block_of(["1.2.3.4 w"])


def test_atomic_write_keeps_mode_and_owner_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "hosts"
    target.write_bytes(ORIGINAL)
    os.chmod(target, 0o640)
    if os.geteuid() == 0:
        os.chown(target, 1234, 5678)
    inode = target.stat().st_ino
    hostfiles.sync_block(target, ["192.168.83.6 workspace-x"])
    st = target.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 5678)
    assert st.st_ino != inode, "the file must be replaced by rename, not rewritten in place"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts"]


def test_failed_write_leaves_the_original_and_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "hosts"
    target.write_bytes(ORIGINAL)

    def broken_replace(src: str, dst: str) -> None:
        raise PermissionError("simulated")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(PermissionError):
        hostfiles.write_atomic(target, b"new")
    assert target.read_bytes() == ORIGINAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts"]


def test_known_hosts_binds_name_and_address_and_skips_keyless() -> None:
    text = hostfiles.known_hosts_text(ENTRIES)
    key_type, key_data = KEY.split()[:2]
    assert text == f"workspace-a,192.168.83.10 {key_type} {key_data}\n"


def test_sync_and_remove_host_files(tmp_path: Path) -> None:
    hosts, known = tmp_path / "hosts", tmp_path / "ssh" / "known_hosts"
    hosts.write_bytes(ORIGINAL)
    changes = hostfiles.sync_host_files(ENTRIES, "/srv/ws", hosts=hosts, known_hosts=known)
    assert len(changes) == 2
    assert known.read_text().startswith("workspace-a,192.168.83.10 ssh-ed25519 ")
    assert hostfiles.sync_host_files(ENTRIES, "/srv/ws", hosts=hosts, known_hosts=known) == []
    assert len(hostfiles.remove_host_files("/srv/ws", hosts=hosts, known_hosts=known)) == 2
    assert hosts.read_bytes() == ORIGINAL
    assert not known.parent.exists()
    assert hostfiles.remove_host_files("/srv/ws", hosts=hosts, known_hosts=known) == []


def test_each_state_directory_has_its_own_block(tmp_path: Path) -> None:
    """The test suite's configuration next to the user's: neither rewrites nor removes the other's lines."""
    hosts = tmp_path / "hosts"
    hosts.write_bytes(ORIGINAL)
    hostfiles.sync_host_files([HostEntry("workspace-demo", "192.168.83.116")], "/var/lib/ws", hosts=hosts)
    users = hosts.read_bytes()
    assert b"# BEGIN ws managed block (/var/lib/ws)\n" in users
    assert hostfiles.sync_host_files([HostEntry("workspace-t", "10.213.5.90")], "/var/tmp/t", hosts=hosts)
    assert hosts.read_bytes().startswith(users) and b"10.213.5.90 workspace-t\n" in hosts.read_bytes()
    assert hostfiles.remove_host_files("/var/tmp/t", hosts=hosts) == [f"removed ws block from {hosts}"]
    assert hosts.read_bytes() == users


def test_the_default_state_directory_takes_over_an_unnamed_block(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_bytes(ORIGINAL + block_of(["192.168.83.116 workspace-demo"]))
    assert hostfiles.sync_host_files([], "/var/tmp/t", hosts=hosts) == [], "another configuration leaves it"
    hostfiles.sync_host_files([HostEntry("workspace-demo", "192.168.83.117")], hostfiles.DEFAULT_OWNER, hosts=hosts)
    assert hosts.read_bytes() == ORIGINAL + hostfiles.replace_block(
        b"", ["192.168.83.117 workspace-demo"], hostfiles.DEFAULT_OWNER
    )


def test_no_workspaces_creates_no_known_hosts_file(tmp_path: Path) -> None:
    hosts, known = tmp_path / "hosts", tmp_path / "ssh" / "known_hosts"
    assert hostfiles.sync_host_files([], "/srv/ws", hosts=hosts, known_hosts=known) == []
    assert not known.exists() and not hosts.exists()


def test_entries_use_pinned_key_else_generated_key(tmp_path: Path) -> None:
    def workspace(name: str, host_key: str | None) -> Workspace:
        root = tmp_path / name
        paths = WorkspacePaths(root, root / "workspace", root / "ssh-host-keys", root / "agent")
        return Workspace(
            name=name, type="nspawn", ip="192.168.83.50", prefixlen=24, mac="02:00:00:00:00:01",
            hostname=f"workspace-{name}", host_interface=f"ve-{name}", instance_name=name, network="sandbox",
            image="debian", autostart=False, cpus=None, memory_mib=None, cid=None, host_key=host_key,
            mounts=(), paths=paths,
        )  # fmt: skip

    generated = workspace("gen", None)
    generated.paths.ssh_host_keys.mkdir(parents=True)
    (generated.paths.ssh_host_keys / "ssh_host_ed25519_key.pub").write_text(KEY + "\n")
    entries = hostfiles.entries_for([workspace("pinned", KEY), generated, workspace("fresh", None)])
    assert [(e.hostname, e.host_key) for e in entries] == [
        ("workspace-pinned", KEY),
        ("workspace-gen", KEY),
        ("workspace-fresh", None),
    ]


def test_networkmanager_drop_in_only_where_networkmanager_is(tmp_path: Path) -> None:
    nm = tmp_path / "NetworkManager"
    assert hostfiles.sync_networkmanager("sandbox-br", nm) == []
    assert not nm.exists()
    nm.mkdir()
    patterns = {"vm-*", "ve-*", "wsi-*"}  # the backends' interface prefixes, as core passes them
    assert hostfiles.sync_networkmanager("sandbox-br", nm, patterns) == [f"wrote {nm}/conf.d/ws-sandbox-br.conf"]
    assert hostfiles.sync_networkmanager("wsti12ab", nm) == [f"wrote {nm}/conf.d/ws-wsti12ab.conf"]
    text = (nm / "conf.d" / "ws-sandbox-br.conf").read_text()
    assert text.endswith(
        "[keyfile]\nunmanaged-devices=interface-name:sandbox-br;interface-name:ve-*;interface-name:vm-*;"
        "interface-name:wsi-*;interface-name:veth*\n"
    )
    assert hostfiles.sync_networkmanager("sandbox-br", nm, patterns) == []
    assert hostfiles.remove_networkmanager("sandbox-br", nm) == [f"removed {nm}/conf.d/ws-sandbox-br.conf"]
    assert hostfiles.remove_networkmanager("sandbox-br", nm) == []
    assert (nm / "conf.d" / "ws-wsti12ab.conf").exists(), "another bridge's drop-in stays"


def test_foreign_networkmanager_file_of_the_same_name_is_kept(tmp_path: Path) -> None:
    conf = tmp_path / "conf.d" / "ws-sandbox-br.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[main]\n# someone else's\n")
    assert hostfiles.remove_networkmanager("sandbox-br", tmp_path) == []
    assert conf.read_text() == "[main]\n# someone else's\n"
