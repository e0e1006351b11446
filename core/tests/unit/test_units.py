"""The unit files of ``ws systemd install``: which units a configuration gets, their order and dependencies,
the agent unit a network asks for, quoting; each file checked by ``systemd-analyze verify``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import fake_backends
import pytest
import ws
from ws.types import Network, NetworkAgent, NetworkAttachment

TOML = """
[user]
name = "alice"
uid = 1500
gid = 1500
authorized_keys = []

[workspaces.alpha]
type = "incus"
network = "fakenet"
autostart = true

[workspaces.beta]
type = "nspawn"
network = "fakenet"

[workspaces.svc]
type = "nspawn"
network = "tunnel"
autostart = true
"""


class Tunnel:
    """A network that needs an agent (as the VPN does): it requires fakenet and is brought up by its agent."""

    @ws.hookimpl
    def ws_networks(self) -> list[str]:
        return ["tunnel"]

    @ws.hookimpl
    def ws_network_define(self, name: str, core, sections) -> Network:
        return Network(
            name,
            "tunnel-br",
            "10.99.0.0/24",
            "10.99.0.1",
            "10.99.0.1",
            (),
            requires=("fakenet",),
            up_before_workspaces=False,
            agent=NetworkAgent(("tunnel", "run", name), watchdog_sec=30),
        )

    @ws.hookimpl
    def ws_network_describe(self, network: Network, workspace, ctx) -> NetworkAttachment:
        return network.attachment()


@pytest.fixture
def context(write_config):
    from ws.context import load_context
    from ws.plugins import PluginManager

    def load(text: str = TOML, name: str = "ws.toml"):
        plugins = PluginManager(environ={"WS_PLUGINS": ""}).load([("fake", fake_backends), ("tunnel", Tunnel())])
        return load_context(write_config(text, name), plugins, environ={})

    return load


def invocation(config: str | None, version: int = 257, environment=()):
    from ws.units.render import Invocation

    return Invocation("/usr/bin/ws", config, tuple(environment), version)


def parsed(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        elif "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            current[key] = value
    return sections


def test_units_for_autostart_workspaces_their_networks_and_the_agent(context) -> None:
    from ws.units.render import render

    ctx = context()
    units = render(ctx, invocation(ctx.config.source))
    assert sorted(units) == [
        "ws-agent-tunnel.service",
        "ws-networks.service",
        "ws-workspace-alpha.service",
        "ws-workspace-svc.service",
    ], "beta is not autostart"
    config = ctx.config.source

    networks = parsed(units["ws-networks.service"])
    assert networks["Unit"]["After"] == "network-online.target nftables.service"
    assert networks["Unit"]["PartOf"] == "nftables.service"
    assert networks["Unit"]["ReloadPropagatedFrom"] == "nftables.service"
    up = f"/usr/bin/ws --config {config} network up fakenet"
    assert networks["Service"] | {} == {"Type": "oneshot", "RemainAfterExit": "yes", "ExecStart": up, "ExecReload": up}
    assert networks["Install"] == {"WantedBy": "multi-user.target nftables.service"}

    agent = parsed(units["ws-agent-tunnel.service"])
    assert agent["Service"]["Type"] == "notify"
    assert agent["Service"]["ExecStart"] == f"/usr/bin/ws --config {config} tunnel run tunnel"
    assert agent["Service"]["WatchdogSec"] == "30s"
    assert (agent["Service"]["Restart"], agent["Service"]["RestartSteps"]) == ("always", "8")
    assert agent["Unit"]["After"] == "network-online.target ws-networks.service"
    assert agent["Unit"]["StartLimitIntervalSec"] == "0"

    alpha = parsed(units["ws-workspace-alpha.service"])
    assert alpha["Unit"]["After"] == "network-online.target ws-networks.service"
    assert alpha["Unit"]["Wants"] == "network-online.target ws-networks.service"
    assert "BindsTo" not in alpha["Unit"] and "Requires" not in alpha["Unit"], "an nftables restart must not stop it"
    assert alpha["Service"]["ExecStart"] == f"/usr/bin/ws --config {config} up alpha"
    assert alpha["Service"]["ExecStop"] == f"/usr/bin/ws --config {config} down alpha"

    svc = parsed(units["ws-workspace-svc.service"])
    assert svc["Unit"]["After"] == "network-online.target ws-networks.service ws-agent-tunnel.service"
    assert svc["Unit"]["BindsTo"] == "ws-agent-tunnel.service", "stopped with its network's agent"


def test_without_autostart_workspaces_there_are_no_units(context) -> None:
    from ws.units.render import render

    ctx = context(TOML.replace("autostart = true", "autostart = false"))
    assert render(ctx, invocation(ctx.config.source)) == {}


def test_before_systemd_254_the_agent_restarts_after_a_fixed_delay(context) -> None:
    from ws.units.render import render

    ctx = context()
    agent = parsed(render(ctx, invocation(ctx.config.source, version=252))["ws-agent-tunnel.service"])["Service"]
    assert agent["RestartSec"] == "15s" and "RestartSteps" not in agent


def test_paths_and_the_login_user_are_quoted_for_systemd(context) -> None:
    from ws.units.render import render

    ctx = context(name="my ws%config.toml")
    env = (("SUDO_USER", "alice"), ("SUDO_UID", "1500"))
    unit = parsed(render(ctx, invocation(ctx.config.source, environment=env))["ws-workspace-alpha.service"])
    quoted = '"' + ctx.config.source.replace("%", "%%") + '"'
    assert unit["Service"]["ExecStart"] == f"/usr/bin/ws --config {quoted} up alpha"
    assert unit["Service"]["Environment"] == "SUDO_USER=alice SUDO_UID=1500"


def test_systemd_accepts_every_unit(context, tmp_path: Path) -> None:
    """``systemd-analyze verify`` parses each file as systemd would (unknown keys, bad values, quoting)."""
    from ws.units.render import Invocation, render

    ctx = context(name="my ws%config.toml")
    program = tmp_path / "bin" / "ws"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)

    units = render(ctx, Invocation(str(program), ctx.config.source, (("SUDO_USER", "alice"),), 252))
    folder = tmp_path / "units"
    folder.mkdir()
    for name, text in units.items():
        (folder / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(folder / name) for name in units)],
        capture_output=True,
        text=True,
        env={"SYSTEMD_UNIT_PATH": f"{folder}:", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    complaints = [line for line in result.stderr.splitlines() if "ws-" in line]
    assert result.returncode == 0 and not complaints, result.stderr


def test_install_without_systemd_as_init_says_so_and_exits_2(cli_invoke, write_config, monkeypatch) -> None:
    """On this host (no systemd as PID 1) for real; the detection is pinned so the test means the same
    wherever it runs. ``ws apply`` still works."""
    import ws.systemd

    monkeypatch.setattr(ws.systemd, "systemd_is_init", lambda: False)
    config = str(write_config(TOML.split("[workspaces.svc]")[0]))
    result = cli_invoke("--config", config, "systemd", "install")
    assert result.exit_code == 2
    assert "systemd is not the init system here" in result.stderr and "ws apply" in result.stderr
    assert not (Path(config).parent / "state" / "systemd-units.json").exists()
    assert cli_invoke("--config", config, "apply").exit_code == 0
    status = cli_invoke("--config", config, "systemd", "status")
    assert (status.exit_code, status.stdout) == (0, "no ws units are installed (ws systemd install)\n")


def test_apply_says_which_installed_units_a_change_rewrites(cli_invoke, write_config, context, tmp_path) -> None:
    """Units as ``ws systemd install`` recorded them; a dry run of ``ws apply`` after a change names the
    units it would write and remove (carrying it out needs systemd: the VM tier)."""
    import hashlib
    import json

    from ws.units.render import render

    text = TOML.split("[workspaces.svc]")[0]
    ctx = context(text)
    installed = invocation(ctx.config.source)
    units = render(ctx, installed)
    record = {
        "program": installed.program,
        "config": installed.config,
        "environment": [],
        "systemd_version": installed.systemd_version,
        "unit_dir": str(tmp_path / "units"),
        "units": {name: hashlib.sha256(body.encode()).hexdigest() for name, body in units.items()},
    }
    (tmp_path / "units").mkdir()
    for name, body in units.items():
        (tmp_path / "units" / name).write_text(body)
    ctx.state.root.mkdir(parents=True, exist_ok=True)
    (ctx.state.root / "systemd-units.json").write_text(json.dumps(record))
    config = str(write_config(text.replace('type = "nspawn"', 'type = "nspawn"\nautostart = true')))

    def dry_run() -> dict:
        result = cli_invoke("--config", config, "apply", "--dry-run", "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)["units"]

    assert dry_run() == {
        "units": ["ws-networks.service", "ws-workspace-alpha.service", "ws-workspace-beta.service"],
        "written": ["ws-workspace-beta.service"],
        "removed": [],
        "started": [],
    }
    config = str(write_config(text.replace("autostart = true", "autostart = false")))
    assert dry_run()["removed"] == ["ws-networks.service", "ws-workspace-alpha.service"]
