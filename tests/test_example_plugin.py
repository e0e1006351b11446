"""The example backend registered in-process, driven through the real ``ws`` CLI: every hook it implements
runs through core's dispatch (the same plugin is installed for real in test_third_party_plugin.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner, Result
from ws import hookspecs, identity
from ws.cli.common import CliState
from ws.cli.main import cli
from ws.context import load_context
from ws.plugins import PluginManager

CONFIG = """\
state_dir = "{state}"

[network]
bridge = "wsexample-none"  # never up here: ws doctor must not judge this host's own sandbox network

[example]
greeting = "hi"

[workspaces.demo]
type = "example"
network = "example"

[workspaces.sand]
type = "example"
"""

ONLY_IN_PROCESS = {"WS_PLUGINS": ""}
"""No entry-point plugins: installed first-party backends must not change what these tests see."""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ws.toml"
    path.write_text(CONFIG.format(state=tmp_path / "state"))
    return path


REGISTRATION = {"ws_workspace_types", "ws_networks", "ws_config_sections", "ws_network_define"}
"""Asked of every plugin while the plugin manager loads, and of a network's owner whenever the
configuration is read (the example network is used by ``demo``), so in every run."""


class Ws:
    """Runs ``ws ARGS`` like a fresh process would (new plugin manager and context each time) and records
    which hooks of the example plugin the run called (``.hooks``)."""

    def __init__(self, config: Path, plugin: ModuleType):
        self.config, self.plugin, self.hooks = config, plugin, set()

    def __call__(self, *args: str, code: int = 0) -> Result:
        self.hooks = set()
        manager = PluginManager(environ=ONLY_IN_PROCESS)
        manager.pm.add_hookcall_monitoring(self._record, lambda *_: None)
        manager.load([("example", self.plugin)])
        state = CliState(config_path=self.config, _plugins=manager)
        result = CliRunner().invoke(cli, list(args), obj=state)
        assert result.exit_code == code, f"ws {' '.join(args)}: {result.output}"
        return result

    def _record(self, hook: str, implementations: list, _kwargs: dict) -> None:
        if any(implementation.plugin is self.plugin for implementation in implementations):
            self.hooks.add(hook)


@pytest.fixture
def ws(config: Path, example_plugin: ModuleType) -> Ws:
    return Ws(config, example_plugin)


def test_example_plugin_implements_every_hook(ws) -> None:
    listing = json.loads(ws("plugins", "--json").stdout)
    example = next(info for info in listing["plugins"] if info["name"] == "example")
    specs = sorted(name for name in vars(hookspecs) if name.startswith("ws_"))
    assert example["hooks"] == specs
    assert (example["types"], example["networks"]) == (["example"], ["example"])
    assert example["sections"] == ["example", "example-net"], "the type's options section and the network's"
    assert listing["failed"] == []


def test_lifecycle_through_the_cli(ws: Ws, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Each command runs exactly the example hooks it should (besides the registration hooks)."""
    state = tmp_path / "state"
    instance = state / "example" / "workspace-demo"
    work = state / "workspaces" / "demo" / "workspace"

    [created] = json.loads(ws("up", "demo", "--json").stdout)
    assert ws.hooks >= REGISTRATION
    assert ws.hooks - REGISTRATION == {
        "ws_network_up",
        "ws_network_attach",
        "ws_provision_files",
        "ws_status",
        "ws_create",
        "ws_start",
        "ws_workspace_started",
    }
    assert (created["action"], created["state"]) == ("created", "running")
    assert created["ip"].startswith("10.77.0.") and 10 <= int(created["ip"].rsplit(".", 1)[1]) <= 49, (
        "addresses come from the example network's own subnet and range"
    )
    assert (instance / "rootfs" / "etc" / "ws-example" / "greeting").read_text() == "hi, demo\n"
    assert json.loads(ws("up", "demo", "--json").stdout)[0]["action"] == "unchanged"
    assert ws.hooks - REGISTRATION == {"ws_network_up", "ws_network_attach", "ws_provision_files", "ws_status"}

    status = json.loads(ws("status", "demo", "--json").stdout)
    assert status["state"] == "running" and status["started_at"] > 0
    assert status["mac"] == identity.mac_address("example-demo")

    ws("exec", "demo", "--", "sh", "-c", "pwd > where; echo out-of-band; exit 7", code=7)
    assert ws.hooks - REGISTRATION == {"ws_exec"}
    assert (work / "where").read_text().strip() == str(work)
    assert "out-of-band" in capfd.readouterr().out

    events = ws("logs", "demo").stdout
    assert ws.hooks - REGISTRATION == {"ws_logs"}
    assert [line.split(" ", 1)[1].split(" ")[0] for line in events.splitlines()] == [
        "created",
        "started",
        "event:",
        "exec",
    ]
    assert "exec sh exited with 7" in events

    assert ws("example-info").stdout.splitlines() == ["hi", "workspace-demo: running"]
    assert ws.hooks == REGISTRATION | {"ws_register_commands"}
    checks = {check["name"]: check for check in json.loads(ws("doctor", "--json").stdout)}
    assert ws.hooks - REGISTRATION == {"ws_doctor_checks"}
    assert checks["example instances"]["status"] == "ok"

    assert json.loads(ws("down", "demo", "--json").stdout)[0]["state"] == "stopped"
    assert ws.hooks - REGISTRATION == {"ws_workspace_stopping", "ws_stop", "ws_network_detach", "ws_status"}
    assert ws("logs", "demo").stdout.splitlines()[-3:][0].endswith("event: stopping")
    refused = ws("exec", "demo", "--", "true", code=1)
    assert "workspace demo is not running; run ws up demo" in refused.stderr

    ws("destroy", "demo", "--purge", "--yes")
    assert ws.hooks - REGISTRATION == {"ws_workspace_stopping", "ws_destroy", "ws_network_detach"}
    assert not instance.exists() and not work.exists()
    assert json.loads(ws("status", "demo", "--json").stdout)["state"] == "absent"


def test_list_and_status_from_the_snapshot_ask_only_ws_status_many(ws: Ws, tmp_path: Path, monkeypatch) -> None:
    """The first ``ws list`` loads the configuration in full (registration hooks, network definition) and
    writes its snapshot; from then on list and status call the plugin's ``ws_status_many`` and nothing
    else, and print the same."""
    monkeypatch.setenv("WS_CACHE_DIR", str(tmp_path / "cache"))
    first = ws("list", "--json").stdout
    assert ws.hooks >= REGISTRATION | {"ws_status_many"} and "ws_status" not in ws.hooks
    assert ws("list", "--json").stdout == first
    assert ws.hooks == {"ws_status_many"}
    assert [row["state"] for row in json.loads(first)] == ["absent", "absent"]
    status = ws("status", "sand").stdout
    assert ws.hooks == {"ws_status_many"}
    assert status.startswith("sand: absent\n")
    (tmp_path / "cache").rename(tmp_path / "moved")
    assert ws("status", "sand").stdout == status
    assert ws.hooks >= REGISTRATION | {"ws_status_many"}


def test_provisioning_contribution_reaches_the_bundle(ws) -> None:
    bundle = json.loads(ws("provision", "show", "sand", "--json").stdout)
    greeting = next(item for item in bundle["files"] if item["path"] == "/etc/ws-example/greeting")
    assert greeting["content"] == "hi, sand\n"


def test_network_maintenance_is_dispatched_to_the_owner(config: Path, example_plugin: ModuleType) -> None:
    """ws_network_maintain (the VPN's renewal) reaches the network's owner with a typed result."""
    ctx = load_context(config, PluginManager(environ=ONLY_IN_PROCESS).load(extra=[("example", example_plugin)]))
    first, again, forced = (ctx.network("example").maintain(force) for force in (False, False, True))
    assert (first.action, again.action, forced.action) == ("renewed", "unchanged", "renewed")
    assert first.detail == again.detail != forced.detail


def test_network_lifecycle_by_name(ws: Ws) -> None:
    """ws_network_up, ws_network_status and ws_network_down dispatched by name; status reads the real state."""
    assert json.loads(ws("network", "status", "example", "--json", code=1).stdout)[0]["up"] is False
    [up] = json.loads(ws("network", "up", "example", "--json").stdout)
    assert ws.hooks - REGISTRATION == {"ws_network_up"} and up["changed"]
    assert json.loads(ws("network", "up", "example", "--json").stdout)[0]["changed"] is False
    [status] = json.loads(ws("network", "status", "example", "--json").stdout)
    assert ws.hooks - REGISTRATION == {"ws_network_status"} and status["up"] and status["detail"] == "10.77.0.0/24"
    [down] = json.loads(ws("network", "down", "example", "--json").stdout)
    assert ws.hooks - REGISTRATION == {"ws_network_down"} and down["changed"]


def test_the_instance_netns_hook_reaches_the_backend(ws: Ws, config: Path, example_plugin: ModuleType) -> None:
    """ws_instance_netns: where a running instance's network namespace is, for network plugins."""
    ws("up", "demo")
    ctx = load_context(config, PluginManager(environ=ONLY_IN_PROCESS).load(extra=[("example", example_plugin)]))
    assert ctx.backend(ctx.workspace("demo")).netns().path == "/proc/1/ns/net"
    ws("down", "demo")
    assert ctx.backend(ctx.workspace("demo")).netns() is None


def test_backend_options_are_validated_with_the_configuration(ws: Ws, config: Path) -> None:
    """A bad ``[workspaces.NAME.example]`` key is a configuration error with its key path (exit 2)."""
    config.write_text(config.read_text() + "\n[workspaces.demo.example]\ngreeting = 3\ncolour = 'red'\n")
    result = ws("config", "check", code=2)
    assert "workspaces.demo.example.greeting: wrong type" in result.output
    assert "workspaces.demo.example.colour: unknown key" in result.output


def test_importing_the_plugin_stays_light(example_plugin: ModuleType) -> None:
    """What docs/plugins.md asks of every plugin, held by the example that authors copy."""
    import subprocess
    import sys

    heavy = {"click", "pydantic", "subprocess", "shutil"}
    probe = f"import sys, ws_plugin_example; print(*sorted({heavy!r} & set(sys.modules)))"
    src = Path(example_plugin.__file__).parent.parent
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env={"PYTHONPATH": str(src)}, check=True
    )
    assert done.stdout.split() == []
