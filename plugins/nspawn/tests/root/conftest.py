"""Root tier of ws-plugin-nspawn: real systemd-nspawn under ws's detached supervisor (this host has no systemd
as PID 1), ws's real image, the real sandbox network, the ws CLI.

``nsenv``: one ws configuration for the session (own state dir under /var/tmp, own bridge and 10.214.X.0/24
subnet, a generated user key pair, ws's image from the shared test cache); its finalizer destroys every
workspace it declared and fails if any process, veth, mount or id range claim of them is left.
``nsenv_of(bases)`` opens another such environment, for a module that needs a configuration of its own.

The unpacked nspawn base is the session's own (``<state dir>/nspawn/bases``), not shared: ``ws destroy`` and
``ws up`` remove the bases that no boot of *their* state dir uses, so a base shared between concurrent
sessions would be deleted under the other session's running containers. Sharing saved nothing either: the
session's last ``ws destroy`` removes the base, so every session unpacks its own (a few seconds).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ws_testing.ws_cli import WsCommands

TEST_STATE = Path("/var/tmp/ws-test-state")
USER, UID = "wsuser", 1234
WORKSPACES = ("life", "crash", "par1", "par2", "par3", "par4", "lim")


@dataclass
class NsEnv(WsCommands):
    plugin = "nspawn"

    root: Path
    config: Path
    bridge: str
    subnet_prefix: str
    user_key: Path
    token: str
    names: list[str] = field(default_factory=list)
    extra_config: str = ""
    workspace_keys: dict[str, list[str]] = field(default_factory=dict)
    """More ``key = value`` lines of a workspace's table, by workspace name."""
    removed: set[str] = field(default_factory=set)
    """Declared workspaces left out of the configuration file (until the teardown)."""

    user: str = USER
    uid: int = UID

    def name(self, base: str) -> str:
        name = f"{base}{self.token}"
        assert name in self.names, f"{base} is not declared in the test configuration"
        return name

    def status(self, name: str) -> dict:
        return json.loads(self.ws("status", name, "--json").stdout)

    def record(self, name: str) -> dict:
        return json.loads((self.root / "nspawn" / "machines" / name / "record.json").read_text())

    def ssh(self, name: str, command: str) -> subprocess.CompletedProcess:
        """Log in from the host with the user key; the host key must match ws's known_hosts."""
        options = [
            f"UserKnownHostsFile={self.root / 'ssh' / 'known_hosts'}", "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes", f"HostKeyAlias=workspace-{name}", "BatchMode=yes", "IdentitiesOnly=yes",
            "IdentityAgent=none", "ConnectTimeout=5",
        ]  # fmt: skip
        argv = ["ssh", "-F", "/dev/null", "-i", str(self.user_key)]
        argv += [arg for option in options for arg in ("-o", option)]
        ip = self.status(name)["ip"]
        return subprocess.run([*argv, f"{USER}@{ip}", command], capture_output=True, text=True, timeout=60)

    def leftovers(self, name: str) -> list[str]:
        """What of workspace ``name``'s boot still exists on the host (empty when it is fully down)."""
        left = []
        if Path(f"/sys/class/net/vb-{name}").exists():
            left.append(f"veth vb-{name}")
        if (self.root / "nspawn" / "machines" / name).exists():
            left.append("machine folder")
        mounts = Path("/proc/self/mountinfo").read_text()
        if f"/nspawn/machines/{name}/" in mounts and str(self.root) in mounts:
            left.append("mounts")
        for pid in _pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if f"--machine={name}".encode() in cmdline and state != "Z":
                left.append(f"nspawn process {pid}")
        claims = Path("/run/ws-nspawn/ranges")
        for claim in claims.iterdir() if claims.is_dir() else ():
            if claim.name.isdigit() and f"/machines/{name}/" in claim.read_text():
                left.append(f"id range claim {claim.name}")
        return left

    def write_config(self) -> None:
        lines = [
            f'state_dir = "{self.root}"',
            "[user]",
            f'name = "{USER}"',
            f"uid = {UID}",
            f"gid = {UID}",
            f'authorized_keys = ["{self.user_key.with_suffix(".pub").read_text().strip()}"]',
            "[network]",
            f'bridge = "{self.bridge}"',
            f'subnet = "{self.subnet_prefix}.0/24"',
            "[nix]",
            "inherit_host = false",
        ]
        for name in (name for name in self.names if name not in self.removed):
            lines += [f"[workspaces.{name}]", 'type = "nspawn"', *self.workspace_keys.get(name, [])]
        self.config.write_text("\n".join(lines) + "\n" + self.extra_config)


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


@pytest.fixture(scope="session")
def ws_image():
    from ws.config.model import CoreConfig
    from ws.images import ensure_image, recipe_for

    if os.geteuid() != 0:
        pytest.fail("the root tier must run as root")
    missing = [tool for tool in ("systemd-nspawn", "nsenter", "ssh", "ssh-keygen") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing {missing}: apt-get install systemd-container util-linux openssh-client")
    recipe = recipe_for(CoreConfig(state_dir=TEST_STATE), with_kernel=True)
    return ensure_image(TEST_STATE, recipe, progress=lambda phase: print(f"test image: {phase}", file=sys.stderr))


@pytest.fixture(scope="session")
def nsenv(ws_image):
    with environment(WORKSPACES) as env:
        yield env


@pytest.fixture(scope="session")
def nsenv_of(ws_image):
    """``nsenv_of(bases)``: a context manager opening an environment of its own for a module whose tests need
    a configuration of their own (workspace names ``base + token``)."""
    return environment


@contextlib.contextmanager
def environment(bases: tuple[str, ...]) -> Iterator[NsEnv]:
    token = secrets.token_hex(2)
    root = Path(f"/var/tmp/wsn-test-{token}")
    root.mkdir(mode=0o755)
    (root / "images").symlink_to(TEST_STATE / "images")
    key = root / "id_user"
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ws-test", "-f", str(key)], check=True)
        subnet_prefix = _free_subnet()
    except BaseException:
        shutil.rmtree(root)  # nothing else exists yet
        raise
    env = NsEnv(
        root=root,
        config=root / "ws.toml",
        bridge=f"wstn{token}",
        subnet_prefix=subnet_prefix,
        user_key=key,
        token=token,
        names=[f"{base}{token}" for base in bases],
    )
    env.write_config()
    try:
        yield env
    finally:
        _teardown(env)


def _free_subnet() -> str:
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for _ in range(50):
        prefix = f"10.214.{secrets.randbelow(250) + 1}"
        if f"{prefix}." not in routes:
            return prefix
    pytest.fail("no free 10.214.X.0/24 test subnet")


def _teardown(env: NsEnv) -> None:
    """Destroy what the session made; fail if anything of ours survives ``ws destroy``."""
    env.extra_config = ""
    env.removed.clear()
    env.write_config()
    for name in env.names:
        env.ws("destroy", name, "--purge", "--yes", check=False)
    left = {name: env.leftovers(name) for name in env.names}
    env.ws("network", "down", check=False)
    mounted = [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(env.root) in line]
    if not mounted:
        shutil.rmtree(env.root, ignore_errors=True)
    left = {name: items for name, items in left.items() if items}
    assert not left and not mounted, f"ws destroy left behind: {left} {mounted}"
