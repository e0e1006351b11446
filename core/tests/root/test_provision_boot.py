"""The provisioning bundle in a real guest: delivered into ws's built image (``built_image``), booted with
systemd-nspawn on a bridge inside a test network namespace, then checked with a real SSH login.

One boot serves every test of the module (booting is the expensive part); each test checks one promise.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from ws.config.model import CoreConfig
from ws.provision import Bundle, LoginUser, build_bundle, deliver_to_rootfs, ensure_host_key
from ws.types import NetworkAttachment, Workspace, WorkspacePaths

pytestmark = pytest.mark.root

GATEWAY, GUEST_IP, PREFIX = "192.168.83.1", "192.168.83.50", 24
USER, UID, GID = "wsuser", 1234, 1235
BOOT_TIMEOUT = 120
TOOLS = {
    "systemd-nspawn": "systemd-container",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "ip": "iproute2",
}


def _require_tools() -> None:
    missing = sorted({package for tool, package in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        pytest.fail(f"the provisioning boot test needs: apt-get install {' '.join(missing)}")
    if os.geteuid() != 0:
        pytest.fail("the root tier must run as root")


@dataclass
class Guest:
    netns: str
    bundle: Bundle
    rootfs: Path
    work: Path
    host_public_key: str
    user_key: Path
    known_hosts: Path
    console: Path

    def ssh(self, command: str, user: str = USER, extra: tuple[str, ...] = (), known_hosts: Path | None = None):
        options = [f"UserKnownHostsFile={known_hosts or self.known_hosts}", "GlobalKnownHostsFile=/dev/null",
                   "StrictHostKeyChecking=yes", "BatchMode=yes", "IdentitiesOnly=yes", "IdentityAgent=none",
                   "ConnectTimeout=5"]  # fmt: skip
        argv = ["ip", "netns", "exec", self.netns, "ssh", "-F", "/dev/null", "-i", str(self.user_key)]
        argv += [arg for option in options for arg in ("-o", option)]
        argv += [*extra, f"{user}@{GUEST_IP}", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)

    def ok(self, command: str) -> str:
        """Run a remote shell command line as the login user; it must succeed."""
        result = self.ssh(command)
        assert result.returncode == 0, f"{command}: {result.stderr}\n--- console ---\n{self.console_tail()}"
        return result.stdout

    def console_tail(self) -> str:
        return "\n".join(self.console.read_text(errors="replace").splitlines()[-40:])


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


def _workspace(state: Path) -> Workspace:
    paths = WorkspacePaths(state, state / "workspace", state / "ssh-host-keys", state / "agent")
    return Workspace(
        name="prov", type="nspawn", ip=GUEST_IP, prefixlen=PREFIX, mac="02:00:00:00:00:50",
        hostname="workspace-prov", host_interface="ve-prov", instance_name="workspace-prov", network="sandbox",
        image="debian-bookworm", autostart=False, cpus=None, memory_mib=None, cid=None, host_key=None,
        mounts=(), paths=paths,
    )  # fmt: skip


def _stop(process: subprocess.Popen) -> None:
    """Ask nspawn to power the guest off; kill the guest's PID namespace and nspawn if that hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
        return
    except subprocess.TimeoutExpired:
        pass
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    for pid in children.read_text().split() if children.exists() else ():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)  # the guest's init: takes its whole PID namespace down
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def guest(built_image, tmp_path_factory):
    _require_tools()
    base = tmp_path_factory.mktemp("provision-boot")
    rootfs, state = base / "rootfs", base / "state"
    rootfs.mkdir()
    subprocess.run(["tar", "-xf", str(built_image.rootfs_tar), "-C", str(rootfs)], check=True, timeout=300)
    workspace = _workspace(state)
    for folder in (workspace.paths.work, workspace.paths.agent):
        folder.mkdir(parents=True)
        os.chown(folder, UID, GID)
    host_public_key = ensure_host_key(workspace.paths.ssh_host_keys)

    user_key = base / "id_user"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ws-test", "-f", str(user_key))
    known_hosts = base / "known_hosts"
    known_hosts.write_text(f"{GUEST_IP} {host_public_key}\n")

    login = LoginUser(USER, UID, GID, f"/home/{USER}", ((base / "id_user.pub").read_text().strip(),))
    attachment = NetworkAttachment("sandbox", "wst-br", GATEWAY, (GATEWAY,), PREFIX)
    core = CoreConfig.model_validate({"nix": {"inherit_host": False}})
    bundle = build_bundle(workspace, attachment, core, login)
    deliver_to_rootfs(bundle, rootfs)
    if not (rootfs / "usr/bin/claude").exists():  # where ws's image installs Claude Code
        fake = rootfs / "usr/bin/claude"  # stands in for the real CLI so the wrapper's exec can be seen
        fake.write_text('#!/bin/sh\necho "real claude: $*"\n')
        fake.chmod(0o755)

    netns = "wst-" + secrets.token_hex(4)
    console = base / "console.log"
    process = None
    try:
        _run("ip", "netns", "add", netns)
        for step in (
            ["link", "set", "lo", "up"],
            ["link", "add", "wst-br", "type", "bridge"],
            ["addr", "add", f"{GATEWAY}/{PREFIX}", "dev", "wst-br"],
            ["link", "set", "wst-br", "up"],
        ):
            _run("ip", "-n", netns, *step)
        binds = [f"--bind{'-ro' if m.read_only else ''}={m.host_path}:{m.guest_path}" for m in bundle.mounts]
        with console.open("wb") as log:
            process = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{netns}", "systemd-nspawn", "--register=no", "--keep-unit", "--boot",
                 f"--machine={netns}", "--network-bridge=wst-br", "--console=pipe", "--link-journal=no",
                 "--timezone=off", "-D", str(rootfs), *binds],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        guest = Guest(netns, bundle, rootfs, workspace.paths.work, host_public_key, user_key, known_hosts, console)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while True:
            result = guest.ssh("true")
            if result.returncode == 0:
                break
            if process.poll() is not None:
                pytest.fail(f"systemd-nspawn exited with {process.returncode}:\n{guest.console_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no SSH login within {BOOT_TIMEOUT}s: {result.stderr}\n{guest.console_tail()}")
            time.sleep(2)
        yield guest
    finally:
        if process is not None:
            _stop(process)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def test_networkd_configured_the_static_address_gateway_and_dns(guest):
    assert f"inet {GUEST_IP}/{PREFIX} " in guest.ok("ip -4 addr show host0")
    assert f"default via {GATEWAY} dev host0" in guest.ok("ip -4 route")
    assert f"nameserver {GATEWAY}" in guest.ok("cat /run/systemd/resolve/resolv.conf")


def test_ssh_presents_the_pinned_host_key_and_only_that(guest):
    other = guest.rootfs.parent / "other-known-hosts"
    other.write_text(f"{GUEST_IP} {ensure_host_key(guest.rootfs.parent / 'other-key')}\n")
    refused = guest.ssh("true", known_hosts=other)
    assert refused.returncode == 255 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr


def test_ssh_is_public_key_only_and_root_cannot_log_in(guest):
    password = guest.ssh("true", extra=("-o", "PreferredAuthentications=password,keyboard-interactive"))
    assert password.returncode == 255 and "Permission denied (publickey)" in password.stderr
    root = guest.ssh("true", user="root")
    assert root.returncode == 255 and "Permission denied (publickey)" in root.stderr


def test_login_user_has_the_host_ids_and_passwordless_doas(guest):
    uid, gid, groups = guest.ok("id -u; id -g; id -nG").split("\n")[:3]
    assert (int(uid), int(gid)) == (UID, GID)
    assert "wheel" in groups.split()
    assert guest.ok("doas -n id -u").strip() == "0"
    assert guest.ok("systemctl is-active ws-firstboot.service").strip() == "active"


def test_work_folder_is_shared_with_the_right_owner(guest):
    guest.ok("echo hello > ~/workspace/from-guest")
    made = guest.work / "from-guest"
    assert made.read_text() == "hello\n"
    assert (made.stat().st_uid, made.stat().st_gid) == (UID, GID)


def test_claude_json_written_at_first_boot_with_mode_600(guest):
    expected = (
        f'{{"hasCompletedOnboarding":true,"projects":{{"/home/{USER}/workspace":'
        '{"hasTrustDialogAccepted":true}},"theme":"dark"}'
    )
    assert guest.ok(f"cat /home/{USER}/.claude.json") == expected
    assert guest.ok(f"stat -c '%a %u %g' /home/{USER}/.claude.json").split() == ["600", str(UID), str(GID)]


def test_claude_resolves_to_the_wrapper_with_and_without_a_login_shell(guest):
    """``ssh HOST CMD`` (what ``ws ssh NAME -- CMD`` runs) gets sshd's default PATH and no profile scripts."""
    for shell in ("bash -lc", "sh -c"):
        assert guest.ok(f"{shell} 'command -v claude'").strip() == "/usr/local/bin/claude"
    if (guest.rootfs / "usr/bin/claude").read_text().startswith('#!/bin/sh\necho "real claude'):
        assert guest.ok("claude hi").strip() == "real claude: --dangerously-skip-permissions hi"
        assert guest.ok("bash -lc 'claude hi'").strip() == "real claude: --dangerously-skip-permissions hi"


def test_host_key_stays_root_only_inside_the_guest(guest):
    listing = guest.ok("stat -c '%a %U' /etc/ssh-host-keys/ssh_host_ed25519_key")
    assert listing.split()[:2] == ["600", "root"]
    denied = guest.ssh("doas -n touch /etc/ssh-host-keys/x")
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr


def test_first_boot_script_runs_again_cleanly_and_keeps_an_existing_claude_json(guest):
    guest.ok("cp ~/.claude.json /tmp/kept && echo '{\"changed\":1}' > ~/.claude.json")
    try:
        output = guest.ok("doas -n /usr/local/lib/ws/firstboot && cat ~/.claude.json && id -nG")
        assert output.splitlines()[-2:] == ['{"changed":1}', f"{USER} wheel"]
    finally:
        guest.ok("cp /tmp/kept ~/.claude.json")
