"""The ``ws`` command line, in-process (CliRunner, with the fake backends) and as the installed console
script: every command, the exit statuses 0/1/2/3, stdout vs stderr, and shell completion."""

from __future__ import annotations

import json
import time

import fake_backends
import pytest
import ws
from ws import configfile
from ws.cli.access_cmd import ssh_argv
from ws.context import load_context
from ws.plugins import PluginManager

from conftest import CORE_ALONE, ok

THREE = """
[workspaces.alpha]
type = "vm"
network = "fakenet"
[workspaces.beta]
type = "container"
network = "fakenet"
[workspaces.gamma]
type = "incus"
network = "fakenet"
"""


@pytest.fixture
def three(write_config):
    return write_config(THREE)


# --- general ------------------------------------------------------------------------------------------


def test_version(run_ws) -> None:
    result = run_ws("--version", fake=False)
    assert result.returncode == 0 and result.stdout.strip() == f"ws, version {ws.__version__}"


def test_help_lists_the_core_commands(cli_invoke) -> None:
    out = ok(cli_invoke("--help")).stdout
    for command in ("up", "down", "start", "stop", "restart", "destroy", "list", "status", "exec", "ssh", "logs"):
        assert f"  {command} " in out
    assert "config" in out and "plugins" in out and "doctor" in out


@pytest.mark.parametrize("args", [["frobnicate"], ["status"], ["up", "--no-such-option"], ["list", "extra"]])
def test_usage_errors_exit_2(cli_invoke, three, args: list[str]) -> None:
    result = cli_invoke("--config", str(three), *args)
    assert result.exit_code == 2 and result.stdout == ""


def test_unknown_workspace_exits_2_and_names_the_configured_ones(cli_invoke, three) -> None:
    result = cli_invoke("--config", str(three), "status", "delta")
    assert result.exit_code == 2
    assert f"no workspace 'delta' in {three} (configured: alpha, beta, gamma)" in result.stderr


# --- config -------------------------------------------------------------------------------------------


def test_config_show_names_the_file_given(cli_invoke, three) -> None:
    out = ok(cli_invoke("--config", str(three), "config", "show")).stdout
    assert out.startswith(f"source: {three}\n")
    assert "workspace alpha:" in out and "  mac             " in out


def test_config_show_names_ws_config(run_ws, three) -> None:
    result = run_ws("config", "show", env={"WS_CONFIG": str(three)})
    assert result.returncode == 0 and result.stdout.startswith(f"source: {three}\n")


def test_config_show_names_the_embedded_default(cli_invoke, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(configfile, "SYSTEM_CONFIG", str(tmp_path / "absent.toml"))
    out = ok(cli_invoke("config", "show", "--json")).stdout
    data = json.loads(out)
    assert data["source"] == "embedded default configuration"
    assert list(data["workspaces"]) == ["demo"] and data["workspaces"]["demo"]["type"] == "incus"


def test_config_show_json_has_every_derived_identity(cli_invoke, write_config) -> None:
    path = write_config('[workspaces.test-vm]\ntype = "vm"\n[workspaces.test-incus]\ntype = "incus"\n')
    data = json.loads(ok(cli_invoke("--config", str(path), "config", "show", "--json")).stdout)
    vm, incus = data["workspaces"]["test-vm"], data["workspaces"]["test-incus"]
    for workspace in (vm, incus):
        assert {"mac", "cid", "hostname", "host_interface", "instance_name", "ip"} <= workspace.keys()
    assert (vm["mac"], vm["cid"], vm["host_interface"]) == ("02:b2:5d:f2:0a:a7", 14719042, "vm-test-vm")
    assert (vm["hostname"], vm["instance_name"]) == ("workspace-test-vm", "workspace-test-vm")
    assert (incus["mac"], incus["cid"], incus["instance_name"]) == ("02:61:5c:6a:41:36", None, "workspace-test-incus")
    assert 10 <= int(vm["ip"].rsplit(".", 1)[1]) <= 49 and 90 <= int(incus["ip"].rsplit(".", 1)[1]) <= 129
    assert data["network"]["host_address"] == "192.168.83.1"
    assert {"state_dir", "user", "network", "nix", "agent", "images", "sections"} <= data.keys()


def test_config_check(cli_invoke, three) -> None:
    assert ok(cli_invoke("--config", str(three), "config", "check")).stdout == f"{three}: ok (3 workspaces)\n"
    data = json.loads(ok(cli_invoke("--config", str(three), "config", "check", "--json")).stdout)
    assert data == {"source": str(three), "valid": True, "workspaces": 3}


def test_config_errors_exit_2_in_process_too(cli_invoke, write_config) -> None:
    path = write_config('[workspaces.dev]\ntype = "vm"\nip = "10.0.0.1"\n')
    result = cli_invoke("--config", str(path), "config", "check")
    assert result.exit_code == 2
    assert f"{path}: workspaces.dev.ip: 10.0.0.1 is not usable in 192.168.83.0/24" in result.stderr


# --- plugins and doctor -----------------------------------------------------------------------------------


def test_plugins_lists_the_backend_even_with_a_broken_config(run_ws, write_config) -> None:
    broken = write_config("nonsense = 1\n")
    result = run_ws("--config", str(broken), "plugins")
    assert result.returncode == 0, result.stderr
    assert "fake (ws-fake-backend 0): type incus, type microvm, type nspawn, network fakenet" in result.stdout
    data = json.loads(run_ws("--config", str(broken), "plugins", "--json").stdout)
    fake = next(p for p in data["plugins"] if p["name"] == "fake")
    assert fake["types"] == ["incus", "microvm", "nspawn"] and "ws_create" in fake["hooks"]
    assert data["failed"] == []


def test_doctor_with_core_alone_fails_and_says_what_to_install(run_ws, write_config) -> None:
    result = run_ws("--config", str(write_config("")), "doctor", fake=False)
    assert result.returncode == 1
    assert "[FAIL] backends: no backend plugin is installed" in result.stdout
    assert "ws-plugin-incus" in result.stdout


def test_doctor_with_a_backend(cli_invoke, three) -> None:
    result = cli_invoke("--config", str(three), "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["backends"]["status"] == "ok" and checks["backends"]["detail"] == "incus, microvm, nspawn"
    assert checks["state directory"]["status"] == "ok"
    assert result.exit_code == (1 if any(c["status"] == "fail" for c in checks.values()) else 0)


def test_doctor_fails_a_state_directory_others_can_write(cli_invoke, three, state_dir) -> None:
    """Whoever can write the state directory changes the rules, images and keys ws uses as root."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o777)
    checks = {c["name"]: c for c in json.loads(cli_invoke("--config", str(three), "doctor", "--json").stdout)}
    assert checks["state directory"]["status"] == "fail" and "mode 0777" in checks["state directory"]["detail"]
    state_dir.chmod(0o755)
    checks = {c["name"]: c for c in json.loads(cli_invoke("--config", str(three), "doctor", "--json").stdout)}
    assert checks["state directory"]["status"] == "ok"


# --- lifecycle ---------------------------------------------------------------------------------------------


def test_up_calls_the_hooks_in_order_then_is_idempotent(cli_invoke, three, state_dir) -> None:
    result = ok(cli_invoke("--config", str(three), "up", "alpha"))
    assert result.stdout.startswith("alpha: created, running 192.168.83.")
    assert fake_backends.hooks(state_dir, "alpha") == ["network_attach", "status", "create", "start", "status"]
    assert "alpha: creating the microvm instance" in result.stderr  # progress on stderr

    second = ok(cli_invoke("--config", str(three), "up", "alpha"))
    assert second.stdout.startswith("alpha: unchanged, running")
    assert fake_backends.hooks(state_dir, "alpha")[5:] == ["network_attach", "status"]  # nothing re-created


def test_up_records_the_lease_and_creates_the_folders(cli_invoke, three, state_dir) -> None:
    ok(cli_invoke("--config", str(three), "up", "beta"))
    ip = json.loads(ok(cli_invoke("--config", str(three), "status", "beta", "--json")).stdout)["ip"]
    assert json.loads((state_dir / "leases.json").read_text()) == {"beta": ip}
    root = state_dir / "workspaces" / "beta"
    assert (root / "workspace").is_dir() and (root / "agent").is_dir() and (root / "ssh-host-keys").is_dir()


def test_changed_configuration_recreates(cli_invoke, three, state_dir, write_config) -> None:
    ok(cli_invoke("--config", str(three), "up", "gamma"))
    changed = write_config(THREE + 'memory = "2G"\n')
    result = ok(cli_invoke("--config", str(changed), "up", "gamma"))
    assert result.stdout.startswith("gamma: recreated (workspace changed), running")
    assert fake_backends.hooks(state_dir, "gamma")[5:] == [
        "network_attach",
        "status",
        "stop",
        "create",
        "start",
        "status",
    ]


def test_restart_forces_recreation(cli_invoke, three, state_dir) -> None:
    ok(cli_invoke("--config", str(three), "up", "alpha"))
    result = ok(cli_invoke("--config", str(three), "restart", "alpha"))
    assert result.stdout.startswith("alpha: recreated, running")
    assert fake_backends.hooks(state_dir, "alpha").count("create") == 2
    again = ok(cli_invoke("--config", str(three), "up", "--recreate", "alpha", "--json"))
    assert json.loads(again.stdout)[0]["action"] == "recreated"


def test_up_without_names_takes_the_autostart_ones(cli_invoke, write_config, state_dir) -> None:
    path = write_config(
        THREE.replace(
            '[workspaces.beta]\ntype = "container"\n', '[workspaces.beta]\ntype = "container"\nautostart = true\n'
        )
    )
    result = ok(cli_invoke("--config", str(path), "up"))
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["beta"]
    assert fake_backends.hooks(state_dir, "alpha") == []


def test_up_without_names_takes_all_when_none_is_autostart(cli_invoke, three) -> None:
    result = ok(cli_invoke("--config", str(three), "up", "--json"))
    assert sorted((r["name"], r["action"], r["state"]) for r in json.loads(result.stdout)) == [
        ("alpha", "created", "running"),
        ("beta", "created", "running"),
        ("gamma", "created", "running"),
    ]


def test_up_runs_workspaces_in_parallel(cli_invoke, three, state_dir, monkeypatch) -> None:
    monkeypatch.setenv("WS_FAKE_START_DELAY", "0.6")
    started = time.monotonic()
    ok(cli_invoke("--config", str(three), "up", "alpha", "beta", "gamma"))
    assert time.monotonic() - started < 1.6  # serial would take 1.8 s of starts alone
    starts = {c[3]: float(c[0]) for c in fake_backends.calls(state_dir) if c[2:5:2] == ["start", "begin"]}
    ends = {c[3]: float(c[0]) for c in fake_backends.calls(state_dir) if c[2:5:2] == ["start", "end"]}
    assert max(starts.values()) < min(ends.values()), "the three starts did not overlap"


def test_deferred_work_runs_once_every_workspace_is_up(cli_invoke, three, state_dir, monkeypatch) -> None:
    """What a backend defers (``ctx.defer``) runs after the command's last workspace is up, not in between."""
    start = fake_backends.ws_start

    @ws.hookimpl
    def deferring_start(workspace, handle, ctx) -> None:
        start(workspace, handle, ctx)
        ctx.defer(lambda: fake_backends._record(ctx, "deferred", workspace))

    monkeypatch.setattr(fake_backends, "ws_start", deferring_start)
    monkeypatch.setenv("WS_FAKE_START_DELAY", "0.3")
    ok(cli_invoke("--config", str(three), "up", "alpha", "beta", "gamma"))
    calls = fake_backends.calls(state_dir)
    ends = [float(c[0]) for c in calls if c[2:5:2] == ["start", "end"]]
    deferred = sorted(c[3] for c in calls if c[2] == "deferred")
    assert deferred == ["alpha", "beta", "gamma"]
    assert min(float(c[0]) for c in calls if c[2] == "deferred") >= max(ends)


def test_down_stop_start(cli_invoke, three, state_dir) -> None:
    ok(cli_invoke("--config", str(three), "up"))
    assert ok(cli_invoke("--config", str(three), "stop", "alpha")).stdout == "alpha: absent\n"
    assert ok(cli_invoke("--config", str(three), "start", "alpha")).stdout.startswith("alpha: created, running")
    assert ok(cli_invoke("--config", str(three), "down", "beta")).stdout == "beta: absent\n"
    out = ok(cli_invoke("--config", str(three), "down", "--json")).stdout
    assert {(r["name"], r["state"]) for r in json.loads(out)} == {
        ("alpha", "absent"),
        ("beta", "absent"),
        ("gamma", "absent"),
    }
    assert (state_dir / "workspaces" / "alpha" / "workspace").is_dir()  # folders stay


def test_destroy_and_purge(cli_invoke, three, state_dir) -> None:
    ok(cli_invoke("--config", str(three), "up", "alpha", "beta"))
    assert ok(cli_invoke("--config", str(three), "destroy", "alpha")).stdout == "alpha: destroyed\n"
    assert (state_dir / "workspaces" / "alpha").is_dir()
    refused = cli_invoke("--config", str(three), "destroy", "beta", "--purge", input="n\n")
    assert refused.exit_code == 1 and (state_dir / "workspaces" / "beta").is_dir()
    result = ok(cli_invoke("--config", str(three), "destroy", "beta", "--purge", "--yes"))
    assert result.stdout == "beta: destroyed and purged\n"
    assert not (state_dir / "workspaces" / "beta").exists()
    assert "beta" not in json.loads((state_dir / "leases.json").read_text())
    assert fake_backends.hooks(state_dir, "beta")[-1] == "destroy"


def test_list(cli_invoke, three) -> None:
    ok(cli_invoke("--config", str(three), "up", "beta"))
    rows = json.loads(ok(cli_invoke("--config", str(three), "list", "--json")).stdout)
    assert [(r["name"], r["type"], r["state"], r["network"]) for r in rows] == [
        ("alpha", "microvm", "absent", "fakenet"),
        ("beta", "nspawn", "running", "fakenet"),
        ("gamma", "incus", "absent", "fakenet"),
    ]
    lines = ok(cli_invoke("--config", str(three), "list")).stdout.splitlines()
    assert lines[1].split()[:2] == ["beta", "nspawn"] and lines[1].split()[-1] == "running"


def test_status(cli_invoke, three) -> None:
    ok(cli_invoke("--config", str(three), "up", "alpha"))
    data = json.loads(ok(cli_invoke("--config", str(three), "status", "alpha", "--json")).stdout)
    assert (data["name"], data["state"], data["type"], data["hostname"]) == (
        "alpha",
        "running",
        "microvm",
        "workspace-alpha",
    )
    assert data["mac"].startswith("02:")
    out = ok(cli_invoke("--config", str(three), "status", "alpha")).stdout
    assert out.splitlines()[0] == "alpha: running" and f"({data['hostname']})" in out


def test_exec_returns_the_commands_status(cli_invoke, run_ws, three) -> None:
    ok(cli_invoke("--config", str(three), "up", "alpha"))
    assert cli_invoke("--config", str(three), "exec", "alpha", "--", "sh", "-c", "exit 7").exit_code == 7
    result = run_ws("--config", str(three), "exec", "alpha", "--", "sh", "-c", "echo out; echo err >&2; exit 5")
    assert (result.returncode, result.stdout) == (5, "out\n") and "err" in result.stderr
    assert run_ws("--config", str(three), "exec", "alpha", "--", "ls", "-a").returncode == 0


def test_exec_on_a_stopped_workspace_fails_with_status_1(run_ws, three) -> None:
    result = run_ws("--config", str(three), "exec", "beta", "--", "true")
    assert result.returncode == 1 and "ws: workspace beta is not running" in result.stderr
    assert "Traceback" not in result.stderr


def test_logs(cli_invoke, three) -> None:
    ok(cli_invoke("--config", str(three), "up", "gamma"))
    out = ok(cli_invoke("--config", str(three), "logs", "gamma")).stdout
    assert "create gamma" in out and "start gamma" in out


def test_ssh_argv_pins_the_host_key(write_config, state_dir) -> None:
    path = write_config('[user]\nname = "alice"\n[workspaces.dev]\ntype = "vm"\nip = "192.168.83.20"\n')
    ctx = load_context(path, PluginManager(environ=CORE_ALONE).load([("fake", fake_backends)]), environ={})
    assert ssh_argv(ctx, "dev", ["uname", "-a"]) == [
        "ssh",
        "-o",
        f"UserKnownHostsFile={state_dir / 'ssh' / 'known_hosts'}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "HostKeyAlias=workspace-dev",
        "alice@192.168.83.20",
        "uname",
        "-a",
    ]


# --- no backend installed --------------------------------------------------------------------------------


def test_up_with_core_alone_exits_3_naming_a_plugin(run_ws, write_config) -> None:
    result = run_ws("--config", str(write_config("")), "up", fake=False)
    assert result.returncode == 3
    assert "no backend plugin is installed" in result.stderr and "ws-plugin-incus" in result.stderr


def test_up_of_a_type_without_plugin_exits_3(run_ws, write_config) -> None:
    path = write_config('[workspaces.dev]\ntype = "container"\n')
    result = run_ws("--config", str(path), "up", "dev", fake=False)
    assert result.returncode == 3 and "ws-plugin-nspawn" in result.stderr and "Traceback" not in result.stderr


def test_embedded_default_with_core_alone_exits_3(cli_invoke, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(configfile, "SYSTEM_CONFIG", str(tmp_path / "absent.toml"))
    result = cli_invoke("up", fake=False)
    assert result.exit_code == 3 and "ws-plugin-incus" in result.stderr


# --- completion --------------------------------------------------------------------------------------------


def test_completion_of_workspace_names_through_the_console_script(run_ws, three) -> None:
    env = {"_WS_COMPLETE": "bash_complete", "COMP_WORDS": "ws status ", "COMP_CWORD": "2", "WS_CONFIG": str(three)}
    result = run_ws(env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["plain,alpha", "plain,beta", "plain,gamma"]
    env.update(COMP_WORDS=f"ws --config {three} exec g", COMP_CWORD="4")
    env.pop("WS_CONFIG")
    assert run_ws(env=env).stdout.splitlines() == ["plain,gamma"]


def test_completion_in_process(three, monkeypatch) -> None:
    from click.shell_completion import ShellComplete
    from ws.cli.common import CliState
    from ws.cli.main import cli

    monkeypatch.setenv("WS_PLUGINS", "")
    complete = ShellComplete(cli, {"obj": CliState(extra_plugins=[("fake", fake_backends)])}, "ws", "_WS_COMPLETE")
    names = [item.value for item in complete.get_completions(["--config", str(three), "up", "alpha"], "")]
    assert names == ["alpha", "beta", "gamma"]
    assert [i.value for i in complete.get_completions(["--config", str(three), "logs"], "be")] == ["beta"]
    broken = three.with_name("broken.toml")
    broken.write_text("[[[")
    assert complete.get_completions(["--config", str(broken), "status"], "") == []  # silent on errors
