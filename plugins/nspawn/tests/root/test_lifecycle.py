"""The whole life of one nspawn workspace under the detached supervisor: up, use, down, up again.

One workspace goes through the steps in order (booting is the expensive part); each test checks one promise
and relies on the previous steps, so the module runs in file order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.root
SEEN: dict = {}


@pytest.fixture(scope="module")
def life(nsenv):
    return nsenv.name("life")


def _expected(nsenv, name: str) -> dict:
    return json.loads(nsenv.ws("config", "show", "--json").stdout)["workspaces"][name]


def test_up_runs_the_machine_on_the_bridge(nsenv, life):
    result = nsenv.ws("up", life, "--json")
    assert '"action": "created"' in result.stdout
    status = nsenv.status(life)
    assert status["state"] == "running" and status["ip"] == _expected(nsenv, life)["ip"]
    assert status["extra"]["supervisor"] == "detached"
    assert status["image"].startswith("debian-bookworm-")
    master = Path(f"/sys/class/net/vb-{life}/master").resolve().name
    assert master == nsenv.bridge
    SEEN["pid"] = status["extra"]["pid"]


def test_guest_root_is_not_host_root(nsenv, life):
    shift = nsenv.record(life)["uid_shift"]
    assert 0x70000000 <= shift < 0x7FFE0000 and shift % 0x10000 == 0
    uid_map = nsenv.ws("exec", life, "--", "doas", "cat", "/proc/1/uid_map").stdout.split()
    assert uid_map == ["0", str(shift), "65536"]
    for line in Path("/etc/subuid").read_text().splitlines() if Path("/etc/subuid").exists() else ():
        _user, first, count = line.split(":")
        assert not (int(first) < shift + 65536 and shift < int(first) + int(count)), f"overlaps {line}"
    children = Path(f"/proc/{SEEN['pid']}/task/{SEEN['pid']}/children").read_text().split()
    init_uids = [
        line for line in Path(f"/proc/{children[0]}/status").read_text().splitlines() if line.startswith("Uid:")
    ]
    assert init_uids[0].split()[1] == str(shift)  # the guest's init runs as the range's first id on the host


def test_ssh_login_checks_the_pinned_host_key(nsenv, life):
    result = nsenv.ssh(life, "id -u; id -g; hostname; doas true && echo doas-ok")
    assert result.returncode == 0, result.stderr
    uid, gid, hostname, doas = result.stdout.split()
    assert (int(uid), int(gid)) == (nsenv.uid, nsenv.uid)
    assert hostname == f"workspace-{life}" and doas == "doas-ok"


def test_host_key_is_mounted_read_only(nsenv, life):
    public = (nsenv.root / "workspaces" / life / "ssh-host-keys" / "ssh_host_ed25519_key.pub").read_text().split()
    inside = nsenv.ws("exec", life, "--", "doas", "cat", "/etc/ssh-host-keys/ssh_host_ed25519_key.pub").stdout
    assert inside.split()[:2] == public[:2]
    owner = nsenv.ws("exec", life, "--", "doas", "stat", "-c", "%u", "/etc/ssh-host-keys/ssh_host_ed25519_key")
    assert owner.stdout.strip() == "0"  # root's on the host, root's inside (idmapped bind)
    write = nsenv.ws("exec", life, "--", "doas", "touch", "/etc/ssh-host-keys/x", check=False)
    assert write.returncode != 0 and "Read-only" in write.stderr


def test_work_folder_is_shared_both_ways_with_the_right_owner(nsenv, life):
    work = nsenv.root / "workspaces" / life / "workspace"
    (work / "from-host").write_text("host\n")
    os.chown(work / "from-host", nsenv.uid, nsenv.uid)
    script = "stat -c '%u %g' ~/workspace/from-host && cat ~/workspace/from-host && echo guest > ~/workspace/from-guest"
    result = nsenv.ws("exec", life, "--", "sh", "-c", script)
    assert result.stdout.split() == [str(nsenv.uid), str(nsenv.uid), "host"]
    made = work / "from-guest"
    assert made.read_text() == "guest\n"
    assert (made.stat().st_uid, made.stat().st_gid) == (nsenv.uid, nsenv.uid)


def test_exec_streams_output_and_returns_the_exit_status(nsenv, life):
    result = nsenv.ws("exec", life, "--", "sh", "-c", "echo out; echo err >&2; whoami; pwd; exit 7", check=False)
    assert result.returncode == 7
    assert result.stdout.split() == ["out", nsenv.user, f"/home/{nsenv.user}/workspace"]
    assert result.stderr.strip() == "err"


def test_up_again_is_unchanged(nsenv, life):
    assert '"action": "unchanged"' in nsenv.ws("up", life, "--json").stdout
    assert nsenv.status(life)["extra"]["pid"] == SEEN["pid"]


def test_logs_show_the_console_of_the_boot(nsenv, life):
    assert "ws-firstboot" in nsenv.ws("logs", life).stdout


def test_down_leaves_nothing_but_the_host_folders(nsenv, life):
    nsenv.ws("down", life)
    assert nsenv.status(life)["state"] == "absent"
    assert nsenv.leftovers(life) == []
    assert (nsenv.root / "workspaces" / life / "workspace" / "from-guest").exists()
    assert (
        not Path(f"/proc/{SEEN['pid']}/cmdline").exists()
        or b"nspawn" not in Path(f"/proc/{SEEN['pid']}/cmdline").read_bytes()
    )


def test_up_after_down_keeps_the_work_folder_and_host_key(nsenv, life):
    known_hosts = (nsenv.root / "ssh" / "known_hosts").read_text()
    assert '"action": "created"' in nsenv.ws("up", life, "--json").stdout
    result = nsenv.ssh(life, "cat ~/workspace/from-guest; test -e /etc/ws-boot-marker || echo fresh")
    assert result.returncode == 0, result.stderr  # same host key: strict checking against the old file
    assert result.stdout == "guest\nfresh\n"
    assert (nsenv.root / "ssh" / "known_hosts").read_text() == known_hosts


def test_the_root_file_system_is_ephemeral_and_the_base_shared(nsenv, life):
    nsenv.ws("exec", life, "--", "doas", "touch", "/etc/ws-boot-marker")
    base = Path(nsenv.record(life)["base"])
    assert not (base / "etc" / "ws-boot-marker").exists()
    assert nsenv.ws("up", life, "--recreate", "--json").returncode == 0
    assert nsenv.ws("exec", life, "--", "test", "-e", "/etc/ws-boot-marker", check=False).returncode == 1


def test_destroy_removes_everything_but_the_host_folders(nsenv, life):
    nsenv.ws("destroy", life)
    assert nsenv.leftovers(life) == []
    assert not (nsenv.root / "nspawn" / "logs" / f"{life}.log").exists()
    assert (nsenv.root / "workspaces" / life / "workspace" / "from-guest").exists()
