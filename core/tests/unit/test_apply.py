"""``ws apply``: the plan for every case (new, changed by each fingerprint part, unchanged, not autostart,
no longer configured, network down) and that carrying it out touches exactly the workspaces it names."""

from __future__ import annotations

import json

import fake_backends
import pytest

from conftest import ok

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEY1 alice@laptop"
BASE = f"""
[user]
name = "alice"
uid = 1500
gid = 1500
authorized_keys = ["{KEY}"]

[workspaces.alpha]
type = "incus"
network = "fakenet"
autostart = true

[workspaces.beta]
type = "nspawn"
network = "fakenet"
autostart = true

[workspaces.gamma]
type = "microvm"
network = "fakenet"
"""


@pytest.fixture
def ws(cli_invoke, write_config):
    """``ws --config CONFIG ARGS`` for the configuration text given last to ``ws.configure``."""

    class Runner:
        config = write_config(BASE)

        def configure(self, text: str) -> None:
            self.config = write_config(text)

        def __call__(self, *args: str) -> str:
            return ok(cli_invoke("--config", str(self.config), *args)).stdout

        def plan(self, *args: str) -> dict:
            return json.loads(self("apply", "--dry-run", "--json", *args))

    return Runner()


def actions(plan: dict) -> dict[str, tuple[str, list[str]]]:
    return {step["name"]: (step["action"], step["reasons"]) for step in plan["workspaces"]}


def test_a_new_host_brings_up_the_network_and_exactly_the_autostart_workspaces(ws, state_dir) -> None:
    plan = ws.plan()
    assert plan["networks"] == [{"name": "fakenet", "action": "up", "reason": "not up: no fake bridge"}]
    assert actions(plan) == {
        "alpha": ("create", ["no instance"]),
        "beta": ("create", ["no instance"]),
        "gamma": ("leave", ["not autostart"]),
    }
    assert plan["units"] is None, "no units are installed"
    assert not (state_dir / "fake-backend" / "network-fakenet.up").exists(), "a dry run changes nothing"
    assert {c[2] for c in fake_backends.calls(state_dir)} == {"status"}, "a dry run only asks for states"

    out = ws("apply")
    assert out.splitlines() == [
        "network fakenet: fakenet up",
        "alpha: created, running",
        "beta: created, running",
        "gamma: left as it is (not autostart; absent)",
    ]
    assert set(fake_backends.hooks(state_dir, "gamma")) == {"status"}
    again = ws.plan()
    assert again["networks"] == [{"name": "fakenet", "action": "unchanged", "reason": "up"}]
    assert actions(again)["alpha"] == ("unchanged", []) and actions(again)["beta"] == ("unchanged", [])


def test_an_unchanged_host_is_left_alone(ws, state_dir) -> None:
    ws("apply")
    assert ws("apply", "--dry-run").splitlines() == [
        "network fakenet: up, unchanged",
        "alpha: unchanged",
        "beta: unchanged",
        "gamma: left as it is (not autostart)",
    ]
    before = len(fake_backends.calls(state_dir))
    assert ws("apply").splitlines() == [
        "network fakenet: up (no changes)",
        "alpha: unchanged, running",
        "beta: unchanged, running",
        "gamma: left as it is (not autostart; absent)",
        "nothing changed: the host already matched the configuration",
    ]
    assert json.loads(ws("apply", "--json"))["changed"] is False
    assert {c[2] for c in fake_backends.calls(state_dir)[before:]} <= {"status", "network_attach"}


@pytest.mark.parametrize(
    ("change", "parts"),
    [
        pytest.param(lambda t: t.replace("autostart = true", "autostart = true\ncpus = 3", 1), ["workspace"],
                     id="workspace"),
        pytest.param(lambda t: t + "[workspaces.alpha.incus]\nprofiles = ['gpu']\n", ["options"], id="options"),
        pytest.param(lambda t: t.replace("[user]", "[agent]\nclaude_skip_permissions = false\n\n[user]"),
                     ["bundle"], id="bundle"),
        pytest.param(lambda t: t.replace("[user]", '[network]\nhost_address = "192.168.83.2"\n\n[user]'),
                     ["bundle", "attachment"], id="attachment"),
    ],
)  # fmt: skip
def test_a_change_of_each_part_recreates_only_the_changed_workspace(ws, state_dir, change, parts) -> None:
    ws("apply")
    ws.configure(change(BASE))
    plan = actions(ws.plan())
    assert plan["alpha"] == ("recreate", parts)
    if parts in (["workspace"], ["options"]):
        assert plan["beta"] == ("unchanged", [])
    before = len(fake_backends.calls(state_dir))
    out = ws("apply").splitlines()
    assert "alpha: recreated, running" in out
    recreated = {c[3] for c in fake_backends.calls(state_dir)[before:] if c[2] == "create"}
    assert recreated == {name for name, (action, _) in plan.items() if action == "recreate"}
    assert actions(ws.plan())["alpha"] == ("unchanged", [])


@pytest.mark.parametrize("part", ["image", "attachment"])
def test_a_part_that_changed_alone_recreates(ws, state_dir, part) -> None:
    """One part alone differs from what the last ``up`` recorded: a rebuilt image, or an attachment the network
    now describes differently (a configuration change moves the bundle with it: the guest's network settings)."""
    ws("apply")
    applied = state_dir / "workspaces" / "beta" / "applied.json"
    parts = json.loads(applied.read_text())
    applied.write_text(json.dumps({**parts, part: "an-older-one"}))
    assert actions(ws.plan())["beta"] == ("recreate", [part])
    assert actions(ws.plan())["alpha"] == ("unchanged", [])
    assert "beta: recreated, running" in ws("apply").splitlines()


def test_running_workspaces_that_are_not_autostart_are_kept_current_but_not_started(ws, state_dir) -> None:
    ws("up", "gamma")
    assert actions(ws.plan())["gamma"] == ("unchanged", [])
    ws.configure(BASE + "cpus = 2\n")
    assert actions(ws.plan())["gamma"] == ("recreate", ["workspace"])
    assert "gamma: recreated, running" in ws("apply").splitlines()
    ws("down", "gamma")
    assert actions(ws.plan())["gamma"] == ("leave", ["not autostart"])


def test_a_stopped_autostart_workspace_is_started(ws, state_dir) -> None:
    ws("apply")
    (state_dir / "fake-backend" / "alpha.state").write_text("stopped")
    assert actions(ws.plan())["alpha"] == ("recreate", ["instance is stopped"])


def test_workspaces_no_longer_configured_are_listed_and_stopped_with_prune(ws, state_dir) -> None:
    ws("apply")
    ws("up", "gamma")
    ws.configure(BASE.split("[workspaces.beta]")[0])
    plan = ws.plan()
    assert actions(plan)["beta"] == ("orphan", ["no longer configured"])
    assert actions(plan)["gamma"] == ("orphan", ["no longer configured"])
    assert [s["state"] for s in plan["workspaces"] if s["name"] in ("beta", "gamma")] == ["running", "running"]
    out = ws("apply").splitlines()
    assert "beta: listed only (ws apply --prune stops it) (no longer configured; running)" in out
    assert (state_dir / "fake-backend" / "beta.state").read_text() == "running", "listed, not stopped"

    assert actions(ws.plan("--prune"))["beta"] == ("stop", ["no longer configured"])
    out = ws("apply", "--prune").splitlines()
    assert {"beta: stopped, absent", "gamma: stopped, absent"} <= set(out)
    assert not (state_dir / "fake-backend" / "beta.state").exists()
    assert not (state_dir / "workspaces" / "beta" / "instance.json").exists()
    assert (state_dir / "workspaces" / "beta" / "workspace").is_dir(), "host folders stay"
    assert set(actions(ws.plan())) == {"alpha"}, "a stopped workspace is forgotten"


def test_a_network_taken_down_is_brought_back_and_running_workspaces_stay(ws, state_dir) -> None:
    ws("apply")
    ws("network", "down", "fakenet")
    plan = ws.plan()
    assert plan["networks"] == [{"name": "fakenet", "action": "up", "reason": "not up: no fake bridge"}]
    assert actions(plan)["alpha"] == ("unchanged", [])
    before = len(fake_backends.calls(state_dir))
    assert ws("apply").splitlines()[:3] == [
        "network fakenet: fakenet up",
        "alpha: unchanged, running",
        "beta: unchanged, running",
    ]
    assert "create" not in {c[2] for c in fake_backends.calls(state_dir)[before:]}


def test_json_of_apply_says_what_was_done(ws) -> None:
    done = json.loads(ws("apply", "--json"))
    assert done["done"] == [
        {"name": "alpha", "action": "created", "state": "running"},
        {"name": "beta", "action": "created", "state": "running"},
    ]
    assert done["network_changes"] == [{"name": "fakenet", "changes": ["fakenet up"]}]
    assert done["units"] is None
    assert done["changed"] is True


def test_autostart_is_not_part_of_the_fingerprint(ws) -> None:
    """Whether the host starts a workspace does not reach the guest: toggling it re-creates nothing."""
    ws("apply")
    ws.configure(BASE.replace("autostart = true", "autostart = false", 1))
    assert actions(ws.plan())["alpha"] == ("unchanged", [])
