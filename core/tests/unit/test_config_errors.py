"""Validation: each kind of error names the key path and the problem, all are reported in one run, and
the CLI turns them into exit status 2 (3 when only plugins are missing) without a traceback."""

from __future__ import annotations

import textwrap

import pytest
from ws.config.resolve import MissingPluginProblem, resolve
from ws.errors import ConfigError
from ws.plugins import PluginManager

from conftest import CORE_ALONE

WS = '[workspaces.dev]\ntype = "incus"\n'
VM = '[workspaces.dev]\ntype = "vm"\n'

CASES = [
    # (id, TOML, key path, words of the message)
    ("unknown top-level key", "colour = 1\n", "colour", "unknown key"),
    ("unknown key in a section", "[network]\nbridges = 'x'\n", "network.bridges", "unknown key"),
    ("unknown workspace key", WS + "memroy = '4G'\n", "workspaces.dev.memroy", "unknown key"),
    ("sub-table of another backend", WS + "[workspaces.dev.nspawn]\nx = 1\n", "workspaces.dev.nspawn", "unknown key"),
    ("backend sub-table not a table", WS + "incus = 1\n", "workspaces.dev.incus", "expected a table"),
    (
        "wrong type bool",
        "[network]\nblock_lan = 'yes'\n",
        "network.block_lan",
        "wrong type: expected boolean, got string",
    ),
    ("wrong type int", WS + "cpus = '4'\n", "workspaces.dev.cpus", "wrong type: expected integer, got string"),
    ("wrong type list", "[nix]\nsubstituters = 'https://x'\n", "nix.substituters", "wrong type"),
    ("wrong type section", "network = 5\n", "network", "wrong type"),
    ("missing type", "[workspaces.dev]\nip = '192.168.83.20'\n", "workspaces.dev.type", "required key is missing"),
    ("ip outside subnet", WS + "ip = '10.0.0.5'\n", "workspaces.dev.ip", "not usable in 192.168.83.0/24"),
    ("ip is the host", WS + "ip = '192.168.83.1'\n", "workspaces.dev.ip", "the host's address"),
    (
        "ip is the configured host address",
        "[network]\nhost_address = '192.168.83.254'\n" + WS + "ip = '192.168.83.254'\n",
        "workspaces.dev.ip",
        "the host's address",
    ),
    ("ip is the network address", WS + "ip = '192.168.83.0'\n", "workspaces.dev.ip", "not usable"),
    ("ip is the broadcast address", WS + "ip = '192.168.83.255'\n", "workspaces.dev.ip", "not usable"),
    ("ip not an address", WS + "ip = '192.168.83.300'\n", "workspaces.dev.ip", "not an IPv4 address"),
    (
        "duplicate ip",
        WS + "ip = '192.168.83.100'\n[workspaces.other]\ntype = 'incus'\nip = '192.168.83.100'\n",
        "workspaces.other.ip",
        "also the address of 'dev'",
    ),
    ("name not a host name", "[workspaces.Dev_1]\ntype = 'incus'\n", "workspaces.Dev_1", "not a valid workspace name"),
    ("name with a leading dash", "[workspaces.-x]\ntype = 'incus'\n", "workspaces.-x", "not a valid workspace name"),
    (
        "interface name too long",
        "[workspaces.abcdefghijklm]\ntype = 'vm'\n",
        "workspaces.abcdefghijklm",
        "'vm-abcdefghijklm' would exceed Linux's 15 bytes (use at most 12 characters)",
    ),
    ("cid below range", VM + "cid = 2\n", "workspaces.dev.cid", "outside 3..4294967294"),
    ("cid above range", VM + "cid = 4294967295\n", "workspaces.dev.cid", "outside 3..4294967294"),
    ("cid on a container", WS + "cid = 1000\n", "workspaces.dev.cid", "only to VM workspaces"),
    (
        "duplicate cid",
        VM + "cid = 77\n[workspaces.vm2]\ntype = 'vm'\ncid = 77\n",
        "workspaces.vm2.cid",
        "cid 77 is also used by 'dev'",
    ),
    ("memory unparsable", WS + "memory = 'lots'\n", "workspaces.dev.memory", "cannot parse memory size 'lots'"),
    ("memory float", WS + "memory = 4.5\n", "workspaces.dev.memory", "size like '4G' or a number of MiB"),
    ("memory boolean", WS + "memory = true\n", "workspaces.dev.memory", "size like '4G'"),
    ("memory zero", WS + "memory = 0\n", "workspaces.dev.memory", "must be positive"),
    ("memory below 1 MiB", WS + "memory = '100K'\n", "workspaces.dev.memory", "less than 1 MiB"),
    ("cpus zero", WS + "cpus = 0\n", "workspaces.dev.cpus", "greater than or equal to 1"),
    (
        "relative mount host",
        WS + "mounts = [{host = 'src', guest = '/src'}]\n",
        "workspaces.dev.mounts.0.host",
        "'src' is relative",
    ),
    (
        "relative mount guest",
        WS + "mounts = [{host = '/src', guest = 'src'}]\n",
        "workspaces.dev.mounts.0.guest",
        "'src' is relative",
    ),
    ("mount without guest", WS + "mounts = [{host = '/src'}]\n", "workspaces.dev.mounts.0.guest", "required"),
    ("relative state_dir", "state_dir = 'state'\n", "state_dir", "absolute"),
    ("relative netrc", "[nix]\nnetrc_file = 'netrc'\n", "nix.netrc_file", "absolute"),
    ("relative keys file", "[user]\nauthorized_keys_file = 'keys'\n", "user", "absolute"),
    ("both key sources", "[user]\nauthorized_keys = []\nauthorized_keys_file = '/k'\n", "user", "not both"),
    ("root login user", "[user]\nname = 'root'\n", "user.name", "must not be root"),
    ("uid zero", "[user]\nuid = 0\n", "user.uid", "greater than or equal to 1"),
    ("host key not ed25519", WS + "host_key = 'ssh-rsa AAAAB3'\n", "workspaces.dev.host_key", "ed25519"),
    ("subnet with host bits", "[network]\nsubnet = '192.168.83.1/24'\n", "network.subnet", "not an IPv4 network"),
    ("subnet too small", "[network]\nsubnet = '10.0.0.0/30'\n", "network", "too small"),
    ("host address outside", "[network]\nhost_address = '10.0.0.1'\n", "network", "not a usable address"),
    ("bridge name too long", "[network]\nbridge = 'sandbox-bridge-01'\n", "network.bridge", "at most 15"),
    ("bad package name", "[images]\npackages = ['Bad Name']\n", "images.packages", "not a Debian package name"),
    ("empty type", "[workspaces.dev]\ntype = ''\n", "workspaces.dev.type", "must name a backend"),
    ("mount onto the guest's /", WS + "mounts = [{host = '/src', guest = '/'}]\n", "workspaces.dev.mounts.0.guest",
     "root file system"),
    ("mount onto / spelled oddly", WS + "mounts = [{host = '/src', guest = '/x/..'}]\n",
     "workspaces.dev.mounts.0.guest", "root file system"),
    ("mount onto the work folder", WS + "mounts = [{host = '/src', guest = '/home/dev/workspace/'}]\n",
     "workspaces.dev.mounts.0.guest", "one of ws's own mounts"),
    ("mount onto the host keys", WS + "mounts = [{host = '/src', guest = '/etc/ssh-host-keys'}]\n",
     "workspaces.dev.mounts.0.guest", "one of ws's own mounts"),
    ("two mounts on one guest path", WS + "mounts = [{host = '/a', guest = '/d'}, {host = '/b', guest = '/d/'}]\n",
     "workspaces.dev.mounts.1.guest", "/d is also the guest path of mounts.0"),
    ("host / shared", WS + "mounts = [{host = '/srv/..', guest = '/data'}]\n", "workspaces.dev.mounts.0.host",
     "root file system '/' cannot be shared"),
    ("private key in authorized_keys", "[user]\nauthorized_keys = ['-----BEGIN OPENSSH PRIVATE KEY-----']\n",
     "user.authorized_keys", "not an SSH public key line"),
    ("no key at all in authorized_keys", "[user]\nauthorized_keys = ['hello']\n", "user.authorized_keys",
     "entry 0 is not an SSH public key line"),
    ("names colliding with helper instances", "[workspaces.a]\ntype = 'incus'\n[workspaces.a-next]\ntype = 'incus'\n",
     "workspaces.a-next", "collides with the helper instances of workspace 'a'"),
    ("names colliding with detached instances",
     "[workspaces.a]\ntype = 'incus'\n[workspaces.a-old-1]\ntype = 'incus'\n", "workspaces.a-old-1", "collides"),
]  # fmt: skip


@pytest.mark.parametrize(("toml", "location", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_error_names_the_key_and_the_problem(resolve_text, toml: str, location: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_text(toml, source="/etc/ws/ws.toml")
    error = caught.value
    found = [(p.location, p.message) for p in error.problems]
    assert any(loc == location and words in message for loc, message in found), found
    assert error.exit_code == 2
    assert f"/etc/ws/ws.toml: {location}: " in str(error)


def test_type_that_no_plugin_provides_says_what_to_install(tmp_path) -> None:
    core_only = PluginManager(environ=CORE_ALONE).load()
    data = {"state_dir": str(tmp_path), "workspaces": {n: {"type": t} for n, t in [("a", "incus"), ("b", "vm")]}}
    with pytest.raises(ConfigError) as caught:
        resolve("ws.toml", data, core_only.registry)
    messages = {p.location: p.message for p in caught.value.problems}
    assert "install ws-plugin-incus" in messages["workspaces.a.type"]
    assert "install ws-plugin-microvm" in messages["workspaces.b.type"]
    assert all(isinstance(p, MissingPluginProblem) for p in caught.value.problems)
    assert caught.value.exit_code == 3  # only plugins are missing


def test_unknown_type_lists_the_installed_ones(resolve_text) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_text("[workspaces.dev]\ntype = 'qemu-kvm'\n")
    (problem,) = caught.value.problems
    assert problem.location == "workspaces.dev.type"
    assert "'qemu-kvm'" in problem.message and "incus" in problem.message and "microvm" in problem.message
    assert caught.value.exit_code == 3


def test_unknown_network_is_a_missing_plugin(resolve_text) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_text("[workspaces.dev]\ntype = 'incus'\nnetwork = 'nowhere'\n")
    (problem,) = caught.value.problems
    assert problem.location == "workspaces.dev.network"
    assert "no installed plugin provides network 'nowhere' (installed: fakenet, sandbox)" in problem.message
    assert caught.value.exit_code == 3


def test_missing_plugin_section_says_what_to_install(resolve_text) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_text("[vpn]\nregion = 'swiss'\n")
    assert [(p.location, "ws-plugin-pia" in p.message) for p in caught.value.problems] == [("vpn", True)]
    assert caught.value.exit_code == 3


def test_missing_plugin_plus_another_error_is_status_2(tmp_path) -> None:
    core_only = PluginManager(environ=CORE_ALONE).load()
    data = {"state_dir": str(tmp_path), "workspaces": {"a": {"type": "incus"}, "b": {"type": "incus", "cpus": 0}}}
    with pytest.raises(ConfigError) as caught:
        resolve("ws.toml", data, core_only.registry)
    assert {p.location for p in caught.value.problems} == {
        "workspaces.a.type",
        "workspaces.b.type",
        "workspaces.b.cpus",
    }
    assert caught.value.exit_code == 2


def test_every_problem_is_reported_at_once_in_process(resolve_text) -> None:
    """One bad value must not hide the others, even across sections and workspaces."""
    toml = "".join(c[1] for c in CASES if c[1].startswith("[workspaces.Dev_1]") or c[0] in ("unknown top-level key",))
    toml += "[network]\nblock_lan = 'no'\n[workspaces.a]\ntype = 'vm'\ncpus = 'x'\n"
    toml += "[workspaces.b]\ntype = 'vm'\nip = '192.168.83.1'\n[workspaces.c]\ntype = 'vm'\ncid = 1\n"
    with pytest.raises(ConfigError) as caught:
        resolve_text(toml)
    assert {p.location for p in caught.value.problems} >= {
        "colour",
        "network.block_lan",
        "workspaces.Dev_1",
        "workspaces.a.cpus",
        "workspaces.c.cid",
    }


MANY_ERRORS = """\
    colour = "blue"
    [agent]
    install_claude_code = "yes"
    [workspaces.dev]
    type = "vm"
    ip = "10.1.2.3"
    memory = "lots"
    cid = 1
    mounts = [{ host = "relative/src", guest = "/src" }]
    [workspaces.web]
    type = "incus"
    ip = "192.168.83.1"
    cpus = "two"
    [workspaces.api]
    type = "container"
    ip = "192.168.83.60"
    [workspaces.db]
    type = "container"
    ip = "192.168.83.60"
    [workspaces.Bad_Name]
    type = "incus"
    [workspaces.waytoolongname]
    type = "vm"
    [workspaces.x]
    type = "no-such-type"
"""


def test_many_errors_in_one_run_via_the_cli(run_ws, write_config) -> None:
    path = write_config(textwrap.dedent(MANY_ERRORS))
    result = run_ws("--config", str(path), "config", "check")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    expected = {
        "colour": "unknown key",
        "agent.install_claude_code": "wrong type: expected boolean, got string",
        "workspaces.dev.ip": "10.1.2.3 is not usable in 192.168.83.0/24",
        "workspaces.dev.memory": "cannot parse memory size",
        "workspaces.dev.cid": "outside 3..4294967294",
        "workspaces.dev.mounts.0.host": "relative",
        "workspaces.web.ip": "192.168.83.1 is the host's address",
        "workspaces.web.cpus": "wrong type",
        "workspaces.api.ip": "",
        "workspaces.db.ip": "also the address of 'api'",
        "workspaces.Bad_Name": "not a valid workspace name",
        "workspaces.waytoolongname": "15 bytes",
        "workspaces.x.type": "no installed plugin provides workspace type 'no-such-type'",
    }
    lines = result.stderr.splitlines()
    for key, words in expected.items():
        if key == "workspaces.api.ip":
            continue  # the first of two equal addresses is fine; the second is reported
        assert any(f"{path}: {key}: " in line and words in line for line in lines), (key, result.stderr)
    assert lines[0] == f"ws: {path}: 12 configuration errors", result.stderr


def test_address_errors_are_reported_with_the_others_via_the_cli(run_ws, write_config) -> None:
    path = write_config(
        """
        [workspaces.dev]
        type = "vm"
        ip = "10.1.2.3"
        cid = 1
        [workspaces.web]
        type = "incus"
        ip = "192.168.83.1"
        cpus = 0
        """
    )
    result = run_ws("--config", str(path), "config", "check")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    for line in (
        f"{path}: workspaces.dev.ip: 10.1.2.3 is not usable in 192.168.83.0/24",
        f"{path}: workspaces.dev.cid: cid 1 is outside 3..4294967294",
        f"{path}: workspaces.web.ip: 192.168.83.1 is the host's address",
        f"{path}: workspaces.web.cpus: ",
    ):
        assert line in result.stderr, result.stderr


def test_only_missing_plugins_exit_3_via_the_cli(run_ws, write_config) -> None:
    path = write_config("[workspaces.dev]\ntype = 'incus'\n")
    result = run_ws("--config", str(path), "config", "check", fake=False)
    assert result.returncode == 3, result.stderr
    assert f"{path}: workspaces.dev.type: " in result.stderr and "ws-plugin-incus" in result.stderr
    assert "Traceback" not in result.stderr


def test_mount_host_paths_are_normalised(resolve_text) -> None:
    config = resolve_text(WS + "mounts = [{host = '/srv/data/../src/./x/', guest = '/x'}]\n")
    assert str(config.workspaces["dev"].mounts[0].host_path) == "/srv/src/x"


def test_a_file_that_is_not_utf8_exits_2_naming_the_file(run_ws, tmp_path) -> None:
    path = tmp_path / "ws.toml"
    path.write_bytes(b"[workspaces.dev]\ntype = 'incus'\n# caf\xe9\n")
    result = run_ws("--config", str(path), "config", "check")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{path}: not UTF-8 (byte 0xe9" in result.stderr


def test_deeply_nested_arrays_exit_2(run_ws, tmp_path) -> None:
    path = tmp_path / "ws.toml"
    path.write_text("colour = " + "[" * 20000 + "]" * 20000 + "\n")
    result = run_ws("--config", str(path), "config", "check")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{path}: arrays or tables are nested too deeply" in result.stderr


def test_toml_syntax_error_and_missing_file_exit_2(run_ws, write_config, tmp_path) -> None:
    path = write_config("[workspaces.dev\n")
    result = run_ws("--config", str(path), "config", "check")
    assert result.returncode == 2 and "not valid TOML" in result.stderr and "Traceback" not in result.stderr
    missing = tmp_path / "nope.toml"
    result = run_ws("--config", str(missing), "config", "check")
    assert result.returncode == 2 and f"{missing}: file not found" in result.stderr
