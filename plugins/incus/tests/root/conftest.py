"""Root tier of ws-plugin-incus: a real incusd, ws's real image, the real sandbox network, the ws CLI.

``incusd``: the daemon, started by scripts/start-incusd if it does not answer (and stopped at the end only
when this session started it). ``ws_image``: ws's image from the shared test cache (the build core's root
tier makes, reused). ``wsenv``: one ws configuration for the session (own state dir under /var/tmp, own
bridge and 10.213.X.0/24 subnet, a generated user key pair) in its own Incus project (own images and
profiles), so nothing the user runs on the same daemon (``ws up demo`` in the default project) is seen,
used or touched; its finalizer destroys every workspace it declared, checks that no instance of them is
left, takes the network down and deletes the project.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ws_testing.ws_cli import WsCommands

REPO = Path(__file__).resolve().parents[4]
TEST_STATE = Path("/var/tmp/ws-test-state")
USER, UID = "wsuser", 1234


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the root tier must run as root")
    missing = [tool for tool in ("incus", "ssh", "ssh-keygen") if shutil.which(tool) is None]
    if missing or not Path("/usr/libexec/incus/incusd").exists() and shutil.which("incusd") is None:
        pytest.fail(f"missing {missing or ['incusd']}: run scripts/install-incus and apt-get install openssh-client")


@pytest.fixture(scope="session")
def incusd():
    """incusd answering on its socket, with a storage pool and a root disk in the default profile."""
    _require_root()
    result = subprocess.run([REPO / "scripts/start-incusd"], capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        pytest.fail(f"scripts/start-incusd failed:\n{result.stdout}{result.stderr}")
    started = [int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("started ")]
    yield
    for pid in started:
        subprocess.run(["incus", "admin", "shutdown", "--timeout", "60"], capture_output=True, timeout=90)
        _wait_gone(pid, 30)


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def ws_image():
    """ws's debian-bookworm build in the shared test cache (the one core's root tier builds, with a kernel
    so every backend can use it; the Incus backend takes it as it is)."""
    from ws.config.model import CoreConfig
    from ws.images import ensure_image, recipe_for

    _require_root()
    recipe = recipe_for(CoreConfig(state_dir=TEST_STATE), with_kernel=True)
    return ensure_image(TEST_STATE, recipe, progress=lambda phase: print(f"test image: {phase}", file=sys.stderr))


def incus(*args: str, project: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["incus", *args, *(("--project", project) if project else ())]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=check)


def incus_json(*args: str, project: str | None = None):
    return json.loads(incus(*args, "--format", "json", project=project).stdout)


@dataclass
class WsEnv(WsCommands):
    plugin = "incus"
    kept_variables = ("WS_CACHE_DIR",)

    root: Path
    config: Path
    bridge: str
    subnet_prefix: str
    user_key: Path
    project: str
    """The session's Incus project: every ``incus`` call and ``[incus] project`` of the configuration."""
    names: list[str] = field(default_factory=list)
    incus_options: dict[str, dict[str, str]] = field(default_factory=dict)
    """``[workspaces.NAME.incus]`` keys (TOML values already quoted) per workspace."""
    workspace_lines: dict[str, list[str]] = field(default_factory=dict)
    """More ``key = value`` lines of ``[workspaces.NAME]`` per workspace."""
    network_lines: list[str] = field(default_factory=list)
    """More ``key = value`` lines of ``[network]``."""

    user: str = USER
    uid: int = UID

    def incus(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return incus(*args, project=self.project, check=check)

    def incus_json(self, *args: str):
        return incus_json(*args, project=self.project)

    def instance(self, name: str) -> dict:
        """One instance with its state, by exact name (``incus query`` takes the project in the URL only)."""
        return json.loads(incus("query", f"/1.0/instances/{name}?recursion=1&project={self.project}").stdout)

    @staticmethod
    def server_info() -> dict:
        return json.loads(incus("query", "/1.0").stdout)

    def running(self, names) -> list[str]:
        """Names of the running instances ws made for ``names`` (a workspace also has a stopped ``-next`` one)."""
        return sorted(name for name, item in self.instances(names).items() if item["status"] == "Running")

    def instances(self, names) -> dict[str, dict]:
        """Every Incus instance ws made for one of ``names``, by instance name."""
        wanted = set(names)
        listed = self.incus_json("list")  # an instance still being created may list "config": null
        return {i["name"]: i for i in listed if (i.get("config") or {}).get("user.ws.workspace") in wanted}

    def remove_unused_ws_images(self) -> None:
        """Delete ws's images no instance uses, so the next ``ws up`` imports again."""
        in_use = {i["config"].get("volatile.base_image") for i in self.incus_json("list")}
        for image in self.incus_json("image", "list"):
            if image["properties"].get("ws.name") and image["fingerprint"] not in in_use:
                self.incus("image", "delete", image["fingerprint"], check=False)

    def both_statuses(self, name: str) -> tuple:
        """``ws_status`` (pylxd, validated options) and ``ws_status_many`` (stdlib, plain options) of workspace
        ``name``, each through the plugin as core calls it; checks that they agree and returns the first."""
        from ws.context import load_context
        from ws.plugins import PluginManager
        from ws.snapshot import plain
        from ws_plugin_incus import listing

        environ = self.environ()
        ctx = load_context(self.config, PluginManager(environ=environ).load(), environ)
        workspace = ctx.workspace(name)
        full = ctx.backend(workspace).status()
        quick = listing.status_many([plain(workspace)], brief=False)[name]
        brief = listing.status_many([plain(workspace)], brief=True)[name]
        assert (quick.state, quick.ip, quick.image, quick.extra) == (full.state, full.ip, full.image, full.extra)
        assert quick.detail.split(", up ")[0] == full.detail.split(", up ")[0]  # the uptime may have ticked
        assert quick.started_at == full.started_at
        assert (brief.state, brief.image, brief.extra) == (full.state, full.image, full.extra)
        assert brief.detail == full.detail.split(", up ")[0], "brief: no uptime (the state is not asked for)"
        return full

    def ws_image_alias(self) -> str:
        """The alias of ws's debian image in the session's project (imported by an earlier ``ws up``)."""
        return next(
            a["name"] for image in self.incus_json("image", "list") for a in image["aliases"]
            if a["name"].startswith("ws-debian-bookworm-")
        )  # fmt: skip

    def name(self, base: str) -> str:
        """A workspace name unique to this session, declared in the configuration."""
        name = f"{base}{self.root.name[-4:]}"
        assert name in self.names, f"{base} is not declared in the test configuration"
        return name

    def status(self, name: str) -> dict:
        return json.loads(self.ws("status", name, "--json").stdout)

    def ip(self, name: str) -> str:
        return self.status(name)["ip"]

    def ssh(self, name: str, command: str) -> subprocess.CompletedProcess:
        """Log in from the host with the user key; the host key must match ws's known_hosts."""
        options = [
            f"UserKnownHostsFile={self.root / 'ssh' / 'known_hosts'}", "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes", f"HostKeyAlias=workspace-{name}", "BatchMode=yes", "IdentitiesOnly=yes",
            "IdentityAgent=none", "ConnectTimeout=5",
        ]  # fmt: skip
        argv = ["ssh", "-F", "/dev/null", "-i", str(self.user_key)]
        argv += [arg for option in options for arg in ("-o", option)]
        return subprocess.run([*argv, f"{USER}@{self.ip(name)}", command], capture_output=True, text=True, timeout=60)

    def write_config(self) -> None:
        lines = [
            f'state_dir = "{self.root}"',
            "[user]",
            f'name = "{USER}"',
            f"uid = {UID}",
            f"gid = {UID}",
            f'authorized_keys = ["{self.user_key.with_suffix(".pub").read_text().strip()}"]',
            "[incus]",
            f'project = "{self.project}"',
            "[network]",
            f'bridge = "{self.bridge}"',
            f'subnet = "{self.subnet_prefix}.0/24"',
            *self.network_lines,
            "[nix]",
            "inherit_host = false",
        ]
        for name in self.names:
            lines += [f"[workspaces.{name}]", 'type = "incus"', 'memory = "1G"', *self.workspace_lines.get(name, [])]
            if name in self.incus_options:
                lines += [f"[workspaces.{name}.incus]", *(f"{k} = {v}" for k, v in self.incus_options[name].items())]
        self.config.write_text("\n".join(lines) + "\n")


WORKSPACES = ("life", "par1", "par2", "par3", "par4", "same", "crash", "alien", "remote", "quick")


@pytest.fixture(scope="session")
def wsenv(incusd, ws_image):
    env = new_env(WORKSPACES)
    try:
        yield env
    finally:
        teardown_env(env)


@pytest.fixture(scope="session")
def env_factory(incusd, ws_image):
    """``(new_env, teardown_env)`` for modules that need a configuration (bridge, subnet, project) of their own."""
    return new_env, teardown_env


def new_env(bases, bridge_prefix: str = "wsti") -> WsEnv:
    """A ws configuration of its own: state dir, bridge, subnet, Incus project, user key, workspaces ``bases``."""
    token = secrets.token_hex(2)
    root = Path(f"/var/tmp/wsi-test-{token}")
    root.mkdir(mode=0o755)
    (root / "images").symlink_to(TEST_STATE / "images")
    key = root / "id_user"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ws-test", "-f", str(key)], check=True)
    env = WsEnv(
        root=root,
        config=root / "ws.toml",
        bridge=f"{bridge_prefix}{token}",
        subnet_prefix=_free_subnet(),
        user_key=key,
        project=f"ws-test-{token}",
        names=[f"{base}{token}" for base in bases],
    )
    env.write_config()
    try:
        _create_project(env.project)
    except BaseException:
        teardown_env(env)
        raise
    return env


def _create_project(project: str) -> None:
    """A project with its own images and profiles (as docs/backends/incus.md tells users to make one); its
    empty default profile gets the root disk of the default project's default profile."""
    pool = json.loads(incus("query", "/1.0/profiles/default").stdout)["devices"]["root"]["pool"]
    incus("project", "create", project, "-c", "features.images=true", "-c", "features.profiles=true")
    incus("profile", "device", "add", "default", "root", "disk", "path=/", f"pool={pool}", project=project)


def _free_subnet() -> str:
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for _ in range(50):
        prefix = f"10.213.{secrets.randbelow(250) + 1}"
        if f"{prefix}." not in routes:
            return prefix
    pytest.fail("no free 10.213.X.0/24 test subnet")


def teardown_env(env: WsEnv) -> None:
    """Destroy what the session made; fail if an instance of ours survives ``ws destroy``."""
    env.incus_options.clear()  # destroy on the local daemon too what a test sent elsewhere
    env.write_config()
    for name in env.names:
        env.ws("destroy", name, "--purge", "--yes", check=False)
    left = env.instances(env.names)
    for instance in left:  # never leave them behind, but report it
        env.incus("delete", "--force", instance, check=False)
    env.ws("network", "down", check=False)
    shutil.rmtree(env.root, ignore_errors=True)
    project_left = _delete_project(env.project)
    assert not left, f"ws destroy left instances behind: {sorted(left)}"
    assert not project_left, f"the test project {env.project} still holds {project_left}"


def _delete_project(project: str) -> list[str]:
    """Delete the session's project with what is left in it (images; instances only if a test failed
    early); returns what ``ws destroy`` should have removed but did not (instances)."""
    if incus("project", "show", project, check=False).returncode != 0:
        return []
    instances = [i["name"] for i in incus_json("list", project=project)]
    for instance in instances:
        incus("delete", "--force", instance, project=project, check=False)
    for image in incus_json("image", "list", project=project):
        incus("image", "delete", image["fingerprint"], project=project, check=False)
    incus("profile", "device", "remove", "default", "root", project=project, check=False)
    incus("project", "delete", project, check=False)
    return instances
