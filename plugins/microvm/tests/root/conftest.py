"""Root tier of ws-plugin-microvm: real qemu (TCG on hosts where KVM does not work), ws's real image with its
kernel, the real sandbox network, the ws CLI.

``vmenv``: one ws configuration for the module (own state dir under /var/tmp, own bridge and 10.214.X.0/24
subnet, a generated user key pair, the image cache shared with the other root tests). Every TCG boot costs
minutes on a small host, so the tests share one workspace and go through its lifecycle in order. The
finalizer destroys the workspace, checks that no qemu or TAP of it is left, and takes the network down.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from ws_testing.ws_cli import WsCommands

TEST_STATE = Path("/var/tmp/ws-test-state")
USER, UID = "wsuser", 1234
BOOT_TIMEOUT = 900


@pytest.fixture(scope="session")
def vm_image():
    """ws's debian-bookworm build with a kernel, from the shared test cache (built when missing)."""
    from ws.config.model import CoreConfig
    from ws.images import ensure_image, recipe_for

    if os.geteuid() != 0:
        pytest.fail("the root tier must run as root")
    missing = [
        tool for tool in ("qemu-system-x86_64", "qemu-img", "mkfs.ext4", "ssh", "ssh-keygen") if not shutil.which(tool)
    ]
    if missing:
        pytest.fail(f"missing {missing}: run scripts/install-host-packages --test")
    recipe = recipe_for(CoreConfig(state_dir=TEST_STATE), with_kernel=True)
    return ensure_image(TEST_STATE, recipe, progress=lambda phase: print(f"test image: {phase}", file=sys.stderr))


@dataclass
class VmEnv(WsCommands):
    plugin = "microvm"
    command_timeout = BOOT_TIMEOUT

    root: Path
    config: Path
    bridge: str
    subnet_prefix: str
    user_key: Path
    name: str

    def status(self) -> dict:
        return json.loads(self.ws("status", self.name, "--json").stdout)

    def ssh(self, command: str) -> subprocess.CompletedProcess:
        """Log in from the host with the user key; the host key must match ws's known_hosts (pinned)."""
        options = [
            f"UserKnownHostsFile={self.root / 'ssh' / 'known_hosts'}", "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes", f"HostKeyAlias=workspace-{self.name}", "BatchMode=yes",
            "IdentitiesOnly=yes", "IdentityAgent=none", "ConnectTimeout=10",
        ]  # fmt: skip
        argv = ["ssh", "-F", "/dev/null", "-i", str(self.user_key)]
        argv += [arg for option in options for arg in ("-o", option)]
        return subprocess.run([*argv, f"{USER}@{self.ip}", command], capture_output=True, text=True, timeout=120)

    @property
    def ip(self) -> str:
        """The address core assigned (inside .10-.49 of the subnet)."""
        shown = json.loads(self.ws("config", "show", "--json").stdout)
        return shown["workspaces"][self.name]["ip"]

    @property
    def boot_dir(self) -> Path:
        return self.root / "microvm" / self.name

    @property
    def work(self) -> Path:
        return self.root / "workspaces" / self.name / "workspace"

    def qemu_running(self) -> bool:
        """Whether any qemu process of this workspace runs (by its command line's name, read from /proc)."""
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    argv = (proc / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"qemu-system-x86_64" in argv[0] and f"ws-{self.name}".encode() in argv:
                    return True
        return False

    def leftovers(self) -> list[str]:
        """What a stopped workspace must not leave: qemu, its TAP, the overlay, the boot's initrd."""
        left = ["qemu"] if self.qemu_running() else []
        if Path(f"/sys/class/net/vm-{self.name}").exists():
            left.append(f"TAP vm-{self.name}")
        left += [name for name in ("overlay.qcow2", "initrd.img") if (self.boot_dir / name).exists()]
        return left


@pytest.fixture(scope="module")
def vmenv(vm_image):
    token = secrets.token_hex(2)
    root = Path(f"/var/tmp/wsmv-test-{token}")
    root.mkdir(mode=0o755)
    (root / "images").symlink_to(TEST_STATE / "images")
    key = root / "id_user"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ws-test", "-f", str(key)], check=True)
    env = VmEnv(root, root / "ws.toml", f"wstm{token}", _free_subnet(), key, f"life{token}")
    env.config.write_text(
        "\n".join(
            [
                f'state_dir = "{root}"',
                "[user]",
                f'name = "{USER}"',
                f"uid = {UID}",
                f"gid = {UID}",
                f'authorized_keys = ["{key.with_suffix(".pub").read_text().strip()}"]',
                "[network]",
                f'bridge = "{env.bridge}"',
                f'subnet = "{env.subnet_prefix}.0/24"',
                "[nix]",
                "inherit_host = false",
                "[microvm]",
                "stop_timeout = 15.0",
                f"ready_timeout = {BOOT_TIMEOUT - 60}.0",
                f"[workspaces.{env.name}]",
                'type = "vm"',
                'memory = "1G"',
                "cpus = 2",
            ]
        )  # fmt: skip
        + "\n"
    )
    try:
        yield env
    finally:
        env.ws("destroy", env.name, "--purge", "--yes", check=False, timeout=300)
        left = env.leftovers()
        env.ws("network", "down", check=False)
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"ws destroy left {left} behind"


def _free_subnet() -> str:
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for _ in range(50):
        prefix = f"10.214.{secrets.randbelow(250) + 1}"
        if f"{prefix}." not in routes:
            return prefix
    pytest.fail("no free 10.214.X.0/24 test subnet")
