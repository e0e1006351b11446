"""``ws apply`` with a real backend: nspawn workspaces under the detached supervisor, on a configuration
of the module's own (docs/systemd.md, "``ws apply``").

Two autostart workspaces and one that is not. The steps run in file order, each on the host the previous
one left: the first apply brings up exactly the autostart ones, a second changes nothing and says so, a
changed workspace is the only one re-created, and a workspace removed from the configuration is listed,
left running, and stopped only with ``--prune``. Three guest boots in all (two at once, one re-creation).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.root
AUTOSTART = "autostart = true"


@pytest.fixture(scope="module")
def env(nsenv_of):
    with nsenv_of(("auto", "keep", "manual")) as env:
        for base in ("auto", "keep"):
            env.workspace_keys[env.name(base)] = [AUTOSTART]
        env.write_config()
        yield env


def apply(env, *args: str) -> dict:
    return json.loads(env.ws("apply", "--json", *args).stdout)


def actions(result: dict) -> dict[str, tuple[str, list[str]]]:
    return {step["name"]: (step["action"], step["reasons"]) for step in result["workspaces"]}


def pids(env) -> dict[str, int | None]:
    """The supervising process of each declared workspace (None when it does not run)."""
    found = {}
    for name in env.names:
        status = json.loads(env.ws("status", name, "--json", check=False).stdout or "{}")
        found[name] = status.get("extra", {}).get("pid") if status.get("state") == "running" else None
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_apply_brings_up_exactly_the_autostart_workspaces(env):
    auto, keep, manual = (env.name(base) for base in ("auto", "keep", "manual"))
    result = apply(env)
    assert actions(result) == {
        auto: ("create", ["no instance"]),
        keep: ("create", ["no instance"]),
        manual: ("leave", ["not autostart"]),
    }
    assert sorted(result["done"], key=lambda d: d["name"]) == [
        {"name": auto, "action": "created", "state": "running"},
        {"name": keep, "action": "created", "state": "running"},
    ]
    assert result["network_changes"][0]["changes"], "the network was down before"
    assert result["changed"] is True
    running = pids(env)
    assert running[auto] and running[keep] and running[manual] is None
    assert env.status(manual)["state"] == "absent"
    assert not env.leftovers(manual)


def test_a_second_apply_changes_nothing_and_says_so(env):
    before = pids(env)
    result = apply(env)
    assert result["changed"] is False
    assert {d["action"] for d in result["done"]} == {"unchanged"}
    assert all(not network["changes"] for network in result["network_changes"]), result["network_changes"]
    assert pids(env) == before


def test_a_changed_workspace_is_the_only_one_recreated(env):
    auto, keep = env.name("auto"), env.name("keep")
    before = pids(env)
    env.workspace_keys[auto] = [AUTOSTART, f"[workspaces.{auto}.nspawn]", "stop_timeout = 29.0"]
    env.write_config()
    plan = json.loads(env.ws("apply", "--dry-run", "--json").stdout)
    assert actions(plan)[auto] == ("recreate", ["options"]) and actions(plan)[keep] == ("unchanged", [])
    result = apply(env)
    assert sorted(result["done"], key=lambda d: d["name"]) == [
        {"name": auto, "action": "recreated", "state": "running"},
        {"name": keep, "action": "unchanged", "state": "running"},
    ]
    assert result["changed"] is True
    after = pids(env)
    assert after[auto] not in (None, before[auto]) and after[keep] == before[keep]
    assert env.ws("exec", auto, "--", "true").returncode == 0


def test_a_removed_workspace_is_listed_and_stopped_only_with_prune(env):
    auto, keep = env.name("auto"), env.name("keep")
    before = pids(env)  # ws status of a workspace needs its configuration: read before it goes
    env.removed.add(keep)
    env.write_config()
    listed = apply(env)
    assert actions(listed)[keep] == ("orphan", ["no longer configured"])
    assert listed["done"] == [{"name": auto, "action": "unchanged", "state": "running"}]
    assert before[keep] and alive(before[keep]), "without --prune it keeps running"

    pruned = apply(env, "--prune")
    assert actions(pruned)[keep] == ("stop", ["no longer configured"])
    assert {"name": keep, "action": "stopped", "state": "absent"} in pruned["done"]
    assert pruned["changed"] is True
    assert env.leftovers(keep) == [] and not alive(before[keep])
    assert (env.root / "workspaces" / keep).is_dir(), "its host folders stay"
    assert pids(env)[auto] == before[auto]
    assert keep not in actions(apply(env)), "once stopped, ws has no record of it"
