"""The head of a ws configuration for nspawn workspaces inside the test VM, shared by the VM modules that
run them: a state dir, a bridge and subnet of the module's own, a login user with a fixed test key, the VM's
user-mode NIC as upstream, and nspawn's timeouts stretched for TCG. The module appends its workspaces."""

from __future__ import annotations

TEST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq8b3e1N9aV5aBv3d1OBh2D5wXx8pC2TbQvC8mU7m0b ws-test"
"""An authorized key nobody holds the private half of: the tests log in with ``ws exec``, not ssh."""


def nspawn_config_head(state_dir: str, bridge: str, subnet: str, *nspawn_keys: str) -> str:
    """``state_dir``, ``[user]``, ``[network]``, ``[nix]`` and ``[nspawn]`` (``ready_timeout = 600``, then
    ``nspawn_keys``, e.g. ``"stop_timeout = 300.0"``) of a configuration, ending with a newline."""
    lines = [
        f'state_dir = "{state_dir}"',
        "[user]",
        'name = "wsuser"',
        "uid = 1234",
        "gid = 1234",
        f'authorized_keys = ["{TEST_KEY}"]',
        "[network]",
        f'bridge = "{bridge}"',
        f'subnet = "{subnet}"',
        'upstream = "eth0"  # the VM\'s user-mode NIC: restrict=on, nothing leaves the VM',
        "[nix]",
        "inherit_host = false",
        "[nspawn]",
        "ready_timeout = 600.0  # unpacking the image over 9p and a boot in the emulated VM",
        *nspawn_keys,
    ]
    return "\n".join(lines) + "\n"
