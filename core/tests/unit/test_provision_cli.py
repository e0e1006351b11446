"""``ws provision show``: the bundle as users audit it, without touching the host."""

from __future__ import annotations

import json
from pathlib import Path

from provision_support import make_bundle
from ws.cli.provision_cmd import render_text
from ws.types import ProvisionFile

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNsaS10ZXN0LWtleS1mb3Itd3MtcHJvdmlzaW9uLXNob3c cli@test"

CONFIG = f"""
[user]
name = "alice"
uid = 1500
gid = 1501
authorized_keys = ["{KEY}"]

[nix]
inherit_host = false

[network]
subnet = "10.77.0.0/24"

[workspaces.dev]
type = "nspawn"
ip = "10.77.0.60"

[workspaces.other]
type = "nspawn"
network = "fakenet"
"""


def test_show_json_lists_files_mounts_and_steps(cli_invoke, write_config, state_dir):
    result = cli_invoke("--config", str(write_config(CONFIG)), "provision", "show", "dev", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["user"] == {"name": "alice", "uid": 1500, "gid": 1501, "home": "/home/alice"}
    files = {item["path"]: item for item in data["files"]}
    network = files["/etc/systemd/network/10-ws.network"]
    assert "Address=10.77.0.60/24\nGateway=10.77.0.1\nDNS=10.77.0.1\n" in network["content"]
    assert files["/etc/ssh/authorized_keys/alice"]["content"] == KEY + "\n"
    assert (files["/usr/local/lib/ws/firstboot"]["mode"], files["/usr/local/lib/ws/firstboot"]["owner"]) == (
        "0755",
        "root",
    )
    keys = next(m for m in data["mounts"] if m["guest"] == "/etc/ssh-host-keys")
    assert keys["read_only"] and keys["host"].startswith(str(state_dir)) and keys["host"].endswith("/ssh-host-keys")
    assert [step["name"] for step in data["firstboot"]] == ["login-user", "sudo-fallback", "claude-config"]
    assert not Path(keys["host"]).exists()  # show generates nothing


def test_show_text_on_any_network(cli_invoke, write_config):
    """The preview asks the network's owner to describe the attachment (ws_network_describe), on the
    sandbox and on a plugin's network alike, without bringing either up."""
    config = write_config(CONFIG)
    result = cli_invoke("--config", str(config), "provision", "show", "dev")
    assert result.exit_code == 0, result.stderr
    assert "\n0644 root:root /etc/doas.conf (38 bytes)\n    # Written by ws.\n    permit nopass :wheel" in result.stdout
    other = cli_invoke("--config", str(config), "provision", "show", "other", "--json")
    assert other.exit_code == 0, other.stderr
    networkd = next(f for f in json.loads(other.stdout)["files"] if f["path"] == "/etc/systemd/network/10-ws.network")
    assert "Address=10.77.0.76/24\nGateway=10.77.0.1\n" in networkd["content"]


def test_text_masks_secret_contents(tmp_path):
    secret = ProvisionFile("/etc/ws-vpn/token", b"TOKEN-XYZ", mode=0o600, secret=True)
    shown = render_text(make_bundle(tmp_path, extra_files=[secret]))
    assert "\n0600 root:root /etc/ws-vpn/token (9 bytes)\n    <secret: contents masked>" in shown
    assert "TOKEN-XYZ" not in shown
