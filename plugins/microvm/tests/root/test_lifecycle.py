"""One microVM through its whole lifecycle under the real qemu, in order, on one full boot (each TCG boot
costs minutes): a ``ws up`` killed during boot converges on the next ``ws up``, which keeps the work folder;
up to sshd with the deterministic MAC, the address and the pinned host key; shares with the right host
owner; exec; a guest root's setuid file is not setuid-root on the host; logs; down leaves nothing but the
work folder."""

from __future__ import annotations

import os
import signal
import stat
import time

import pytest
from ws.identity import mac_address

from .conftest import BOOT_TIMEOUT

# a TCG boot on a loaded 2-core host can take longer than the suite's 600 s per test
pytestmark = [pytest.mark.root, pytest.mark.timeout(BOOT_TIMEOUT + 300)]

UID = 1234


def test_a_killed_up_during_boot_converges_and_keeps_the_work_folder(vmenv):
    """The first boot is killed: ``ws up`` dies while the guest boots, the next ``ws up`` converges (it
    replaces the orphaned qemu by a fresh boot) and the work folder made before either keeps its file."""
    kept = vmenv.work / "kept"
    vmenv.work.mkdir(parents=True, exist_ok=True)
    kept.write_text("from before\n")
    os.chown(kept, UID, UID)
    process = vmenv.popen("up", vmenv.name)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not vmenv.qemu_running():
        assert process.poll() is None, process.communicate()
        time.sleep(0.5)
    time.sleep(5)
    process.send_signal(signal.SIGKILL)  # the guest is booting
    process.wait()
    assert vmenv.qemu_running()
    vmenv.ws("up", vmenv.name)
    assert vmenv.status()["state"] == "running"
    login = vmenv.ssh("cat ~/workspace/kept")
    assert login.returncode == 0 and login.stdout == "from before\n", login.stderr


def test_the_guest_has_the_workspace_identity_and_a_second_up_changes_nothing(vmenv):
    pid = vmenv.status()["extra"]["pid"]
    vmenv.ws("up", vmenv.name)  # already up: nothing to do
    status = vmenv.status()
    assert status["state"] == "running", status
    assert status["extra"]["pid"] == pid
    assert status["extra"]["tap"] == f"vm-{vmenv.name}"
    assert "vsock" in status["detail"]  # CID attached, or why not
    login = vmenv.ssh("cat /sys/class/net/eth0/address; ip -4 -o addr show eth0; hostname; id -u")
    assert login.returncode == 0, login.stderr
    mac, address, hostname, uid = login.stdout.splitlines()
    assert mac == mac_address(f"vm-{vmenv.name}")
    assert f" {vmenv.ip}/24 " in address and vmenv.ip.startswith(f"{vmenv.subnet_prefix}.")
    assert hostname == f"workspace-{vmenv.name}" and uid == str(UID)


def test_shares_are_read_and_written_with_the_login_user_as_host_owner(vmenv):
    (vmenv.work / "from-host").write_text("hello guest\n")
    os.chown(vmenv.work / "from-host", UID, UID)
    login = vmenv.ssh("cat ~/workspace/from-host && echo hello host > ~/workspace/from-guest && mkdir ~/workspace/dir")
    assert login.returncode == 0 and login.stdout == "hello guest\n", login.stderr
    made = vmenv.work / "from-guest"
    assert made.read_text() == "hello host\n"
    assert (made.stat().st_uid, made.stat().st_gid) == (UID, UID)
    assert (vmenv.work / "dir").stat().st_uid == UID


def test_exec_runs_as_the_login_user_and_returns_the_status(vmenv):
    result = vmenv.ws("exec", vmenv.name, "--", "sh", "-c", "id -un; pwd; exit 7", check=False)
    assert result.returncode == 7, result.stderr
    assert result.stdout.split() == ["wsuser", "/home/wsuser/workspace"]


def test_a_setuid_root_file_made_by_guest_root_is_not_setuid_root_on_the_host(vmenv):
    command = "doas sh -c 'cp /bin/true ~wsuser/workspace/suid && chown root:root ~wsuser/workspace/suid && "
    command += "chmod 4755 ~wsuser/workspace/suid' && stat -c '%u %a' ~/workspace/suid"
    login = vmenv.ssh(command)
    assert login.returncode == 0, login.stderr
    assert login.stdout.split() == ["0", "4755"]  # what the guest asked for, as the guest sees it
    host = (vmenv.work / "suid").stat()
    assert host.st_uid == UID and not host.st_mode & (stat.S_ISUID | stat.S_ISGID), oct(host.st_mode)


def test_logs_show_the_serial_console(vmenv):
    assert "Linux version" in vmenv.ws("logs", vmenv.name).stdout


def test_down_leaves_no_qemu_tap_or_overlay(vmenv):
    vmenv.ws("down", vmenv.name)
    assert vmenv.status()["state"] == "absent"
    assert vmenv.leftovers() == []
    assert (vmenv.work / "from-guest").read_text() == "hello host\n"
    assert (vmenv.work / "kept").read_text() == "from before\n"
