"""restartIfChanged, completely: every part of what reaches the guest is in the fingerprint recorded at
``ws up``, a change of any part re-creates the workspace (and ``--dry-run`` names the part), nothing
changed leaves it alone."""

from __future__ import annotations

import dataclasses
import json

import fake_backends
import pytest
from ws.operations import fingerprint
from ws.preparation import PreparedImage
from ws.provision import build_bundle
from ws.provision.user import LoginUser
from ws.types import NetworkAttachment

from conftest import ok

LAPTOP = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEY1 alice@laptop"
PHONE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEY2 alice@phone"
BASE = f"""
[user]
name = "alice"
uid = 1500
gid = 1500
authorized_keys = ["{LAPTOP}", "{PHONE}"]

[workspaces.dev]
type = "incus"
network = "fakenet"
"""


def up(cli_invoke, config) -> str:
    return ok(cli_invoke("--config", str(config), "up", "dev")).stdout


def plan(cli_invoke, config) -> dict:
    [item] = json.loads(ok(cli_invoke("--config", str(config), "up", "--dry-run", "--json", "dev")).stdout)
    return item


@pytest.mark.parametrize(
    ("change", "part"),
    [
        pytest.param(lambda text: text.replace(f', "{PHONE}"', ""), "bundle", id="an authorized key removed"),
        pytest.param(lambda text: text + "[workspaces.dev.incus]\nprofiles = ['default', 'gpu']\n", "options",
                     id="a backend option changed"),
        pytest.param(lambda text: text + 'memory = "2G"\n', "workspace", id="the resolved workspace changed"),
        pytest.param(lambda text: text.replace("[user]", "[agent]\nclaude_skip_permissions = false\n\n[user]"),
                     "bundle", id="an agent setting changed"),
    ],
)  # fmt: skip
def test_each_part_that_reaches_the_guest_recreates(cli_invoke, write_config, state_dir, change, part) -> None:
    config = write_config(BASE)
    assert up(cli_invoke, config).startswith("dev: created, running")
    assert plan(cli_invoke, config)["action"] == "unchanged"
    changed = write_config(change(BASE))
    dry = plan(cli_invoke, changed)
    assert (dry["action"], dry["reasons"]) == ("recreate", [part])
    calls_before = len(fake_backends.hooks(state_dir, "dev"))
    assert up(cli_invoke, changed).startswith(f"dev: recreated ({part} changed), running")
    assert fake_backends.hooks(state_dir, "dev")[calls_before:] == [
        "network_attach",
        "status",
        "stop",
        "create",
        "start",
        "status",
    ]
    assert up(cli_invoke, changed).startswith("dev: unchanged")


def test_dry_run_changes_nothing_and_says_what_would_happen(cli_invoke, write_config, state_dir) -> None:
    config = write_config(BASE)
    out = ok(cli_invoke("--config", str(config), "up", "--dry-run", "dev")).stdout
    assert out == "dev: would be created (no instance)\n"
    assert fake_backends.hooks(state_dir, "dev") == ["status"], "a dry run only asks for the state"
    up(cli_invoke, config)
    assert ok(cli_invoke("--config", str(config), "up", "--dry-run", "dev")).stdout == "dev: unchanged\n"
    forced = ok(cli_invoke("--config", str(config), "up", "--dry-run", "--recreate", "dev")).stdout
    assert forced == "dev: would be re-created (forced)\n"


def test_the_image_content_hash_is_a_part_of_its_own() -> None:
    """A rebuilt image (another content hash) changes only the image part."""
    from ws.config.model import CoreConfig
    from ws.state import workspace_paths
    from ws.types import Workspace

    paths = workspace_paths(CoreConfig().state_dir, "dev")
    identities = ("192.168.83.90", 24, "02:00:00:00:00:01", "workspace-dev", "wsi-dev", "workspace-dev")
    rest = ("sandbox", "debian-bookworm", False, None, None, None, None, (), paths)
    workspace = Workspace("dev", "incus", *identities, *rest)
    attachment = NetworkAttachment("sandbox", "sandbox-br", "192.168.83.1", ("192.168.83.1",), 24)
    user = LoginUser("alice", 1500, 1500, "/home/alice", ("ssh-ed25519 AAAA alice",))
    bundle = build_bundle(workspace, attachment, CoreConfig(), user, host_nix_conf=paths.root / "none")
    old = fingerprint(workspace, bundle, attachment, PreparedImage("debian-bookworm", hash="1111111111111111"))
    new = fingerprint(workspace, bundle, attachment, PreparedImage("debian-bookworm", hash="2222222222222222"))
    assert [part for part in old if old[part] != new[part]] == ["image"]
    moved = dataclasses.replace(attachment, gateway="192.168.83.2")
    image = PreparedImage("debian-bookworm", hash="1111111111111111")
    moved_bundle = build_bundle(workspace, moved, CoreConfig(), user, host_nix_conf=paths.root / "none")
    after = fingerprint(workspace, moved_bundle, moved, image)
    assert [part for part in old if old[part] != after[part]] == ["bundle", "attachment"], (
        "a moved gateway changes the attachment and the guest's networkd file"
    )
