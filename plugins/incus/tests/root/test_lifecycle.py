"""The whole life of one Incus workspace on the real daemon: up, use, down, up again (re-created).

One workspace goes through the steps in order (booting is the expensive part); each test checks one promise
and relies on the previous steps, so the module runs in file order.
"""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.root
SEEN: dict[str, str] = {}


@pytest.fixture(scope="module")
def life(wsenv):
    name = wsenv.name("life")
    return name, f"workspace-{name}"


def _expected(wsenv, name: str) -> dict:
    return json.loads(wsenv.ws("config", "show", "--json").stdout)["workspaces"][name]


def test_up_runs_with_the_configured_identity(wsenv, life):
    name, instance = life
    result = wsenv.ws("up", name, "--json")
    assert '"action": "created"' in result.stdout
    expected = _expected(wsenv, name)
    info = wsenv.instance(instance)
    assert info["status"] == "Running"
    assert info["config"]["user.ws.workspace"] == name
    assert info["devices"]["eth0"]["hwaddr"] == expected["mac"]
    addresses = [a["address"] for a in info["state"]["network"]["eth0"]["addresses"] if a["family"] == "inet"]
    assert addresses == [expected["ip"]]
    status = wsenv.status(name)
    assert status["state"] == "running" and status["ip"] == expected["ip"]
    assert status["image"].startswith("ws-debian-bookworm-")


def test_ssh_login_checks_the_pinned_host_key(wsenv, life):
    name, _ = life
    result = wsenv.ssh(name, "id -u; id -g; cat /sys/class/net/eth0/address; doas true")
    assert result.returncode == 0, result.stderr
    uid, gid, mac = result.stdout.split()[:3]
    assert (int(uid), int(gid)) == (wsenv.uid, wsenv.uid)
    assert mac == _expected(wsenv, name)["mac"]


def test_host_key_is_mounted_read_only(wsenv, life):
    name, _ = life
    public = (wsenv.root / "workspaces" / name / "ssh-host-keys" / "ssh_host_ed25519_key.pub").read_text().split()
    inside = wsenv.ws("exec", name, "--", "doas", "cat", "/etc/ssh-host-keys/ssh_host_ed25519_key.pub").stdout
    assert inside.split()[:2] == public[:2]
    known = (wsenv.root / "ssh" / "known_hosts").read_text()
    assert f"{public[0]} {public[1]}" in known
    write = wsenv.ws("exec", name, "--", "doas", "touch", "/etc/ssh-host-keys/x", check=False)
    assert write.returncode != 0 and "Read-only" in write.stderr


def test_work_folder_is_shared_both_ways_with_the_right_owner(wsenv, life):
    name, _ = life
    work = wsenv.root / "workspaces" / name / "workspace"
    (work / "from-host").write_text("host\n")
    os.chown(work / "from-host", wsenv.uid, wsenv.uid)
    script = "stat -c '%u %g' ~/workspace/from-host && cat ~/workspace/from-host && echo guest > ~/workspace/from-guest"
    result = wsenv.ws("exec", name, "--", "sh", "-c", script)
    assert result.stdout.split() == [str(wsenv.uid), str(wsenv.uid), "host"]
    made = work / "from-guest"
    assert made.read_text() == "guest\n"
    assert (made.stat().st_uid, made.stat().st_gid) == (wsenv.uid, wsenv.uid)


def test_exec_streams_output_and_returns_the_exit_status(wsenv, life):
    name, _ = life
    result = wsenv.ws("exec", name, "--", "sh", "-c", "echo out; echo err >&2; whoami; exit 7", check=False)
    assert result.returncode == 7
    assert result.stdout.split() == ["out", wsenv.user]
    assert result.stderr.strip() == "err"


def test_claude_wrapper_is_found_by_ssh_commands_and_exec(wsenv, life):
    """``ws ssh NAME -- CMD`` runs CMD without a login shell (no /etc/profile.d), ``ws exec`` with Incus'
    default PATH: both find ws's wrapper first, and it runs the real claude (a stand-in in /usr/bin, where
    ws's image installs Claude Code) without permission prompts."""
    name, _ = life
    fake = "printf '#!/bin/sh\\necho \"real claude: $*\"\\n' > /usr/bin/claude && chmod 755 /usr/bin/claude"
    wsenv.ws("exec", name, "--", "doas", "sh", "-c", fake)
    try:
        over_ssh = wsenv.ssh(name, "command -v claude && claude -p 'two words'")
        assert over_ssh.returncode == 0, over_ssh.stderr
        assert over_ssh.stdout.splitlines() == [
            "/usr/local/bin/claude",
            "real claude: --dangerously-skip-permissions -p two words",
        ]
        over_exec = wsenv.ws("exec", name, "--", "sh", "-c", "command -v claude && claude -p hi")
        assert over_exec.stdout.splitlines() == [
            "/usr/local/bin/claude",
            "real claude: --dangerously-skip-permissions -p hi",
        ]
    finally:
        wsenv.ws("exec", name, "--", "doas", "rm", "-f", "/usr/bin/claude", check=False)


def test_up_again_is_unchanged(wsenv, life):
    name, instance = life
    before = wsenv.instance(instance)["config"]["volatile.uuid"]
    assert '"action": "unchanged"' in wsenv.ws("up", name, "--json").stdout
    assert wsenv.instance(instance)["config"]["volatile.uuid"] == before


def test_up_of_an_unchanged_workspace_brings_its_network_back(wsenv, life):
    """restartIfChanged leaves the workspace alone, but ``ws up`` still makes sure its network is up."""
    name, instance = life
    before = wsenv.instance(instance)["config"]["volatile.uuid"]
    down = json.loads(wsenv.ws("network", "down", "sandbox", "--json").stdout)
    assert down[0]["changed"] and wsenv.ws("network", "status", "sandbox", check=False).returncode == 1
    assert '"action": "unchanged"' in wsenv.ws("up", name, "--json").stdout
    assert wsenv.ws("network", "status", "sandbox", check=False).returncode == 0, "ws up repaired the network"
    assert wsenv.instance(instance)["config"]["volatile.uuid"] == before, "and did not re-create the workspace"
    result = wsenv.ssh(name, "true")  # the workspace is reachable on the rebuilt bridge again
    assert result.returncode == 0, result.stderr


def test_down_leaves_only_the_image(wsenv, life):
    name, _ = life
    SEEN["uuid"] = wsenv.instance(f"workspace-{name}")["config"]["volatile.uuid"]
    wsenv.ws("down", name)
    assert wsenv.instances([name]) == {}
    assert wsenv.status(name)["state"] == "absent"
    aliases = [a["name"] for image in wsenv.incus_json("image", "list") for a in image["aliases"]]
    assert any(alias.startswith("ws-debian-bookworm-") for alias in aliases)
    assert (wsenv.root / "workspaces" / name / "workspace" / "from-guest").exists()


def test_up_after_down_recreates_with_same_identity_and_data(wsenv, life):
    name, instance = life
    known_hosts = (wsenv.root / "ssh" / "known_hosts").read_text()
    assert '"action": "created"' in wsenv.ws("up", name, "--json").stdout
    info = wsenv.instance(instance)
    assert info["config"]["volatile.uuid"] != SEEN["uuid"]
    assert info["devices"]["eth0"]["hwaddr"] == _expected(wsenv, name)["mac"]
    result = wsenv.ssh(name, "cat ~/workspace/from-guest")
    assert result.returncode == 0, result.stderr  # same host key: strict checking against the old file
    assert result.stdout == "guest\n"
    assert (wsenv.root / "ssh" / "known_hosts").read_text() == known_hosts


def test_logs_show_the_journal(wsenv, life):
    name, _ = life
    result = wsenv.ws("logs", name)
    assert "ws-firstboot" in result.stdout


def test_destroy_removes_instance_and_unused_images(wsenv, life):
    name, _ = life
    wsenv.ws("destroy", name)
    assert wsenv.instances([name]) == {}
    assert (wsenv.root / "workspaces" / name / "workspace" / "from-guest").exists()
    in_use = {i["config"].get("volatile.base_image") for i in wsenv.incus_json("list")}
    left = [
        i
        for i in wsenv.incus_json("image", "list")
        if i["properties"].get("ws.name") and i["fingerprint"] not in in_use
    ]
    assert left == []
