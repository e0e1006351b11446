"""The configuration model: where it is read from, the embedded default, every section's defaults and
accepted values, and the docs meta-test (every key of the model is documented)."""

from __future__ import annotations

import ipaddress
import re
import typing
from pathlib import Path

import fake_backends
import pytest
import ws
from pydantic import BaseModel
from ws import configfile
from ws.config import loader, model
from ws.plugins import PluginManager
from ws.types import WorkspaceType

from conftest import CORE_ALONE

DOCS = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


# --- sources -------------------------------------------------------------------------------------------


def test_source_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, from_env, system = tmp_path / "a.toml", tmp_path / "b.toml", tmp_path / "system.toml"
    monkeypatch.setattr(configfile, "SYSTEM_CONFIG", str(system))
    assert loader.config_path(explicit, {"WS_CONFIG": str(from_env)}) == explicit
    assert loader.config_path(None, {"WS_CONFIG": str(from_env)}) == from_env
    assert loader.config_path(None, {}) is None  # no system file: the embedded default
    system.write_text("")
    assert loader.config_path(None, {}) == system
    assert loader.config_path(None, {"WS_CONFIG": ""}) == system  # empty variable = unset


def test_load_config_reads_the_chosen_file(write_config, plugins) -> None:
    path = write_config('[workspaces.dev]\ntype = "incus"\n')
    config = loader.load_config(path, plugins.registry, environ={})
    assert config.source == str(path)
    assert list(config.workspaces) == ["dev"]
    config = loader.load_config(None, plugins.registry, environ={"WS_CONFIG": str(path)})
    assert config.source == str(path)


def test_embedded_default_has_one_demo_of_the_first_installed_backend(
    plugins, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(configfile, "SYSTEM_CONFIG", str(tmp_path / "missing.toml"))
    config = loader.load_config(None, plugins.registry, environ={})
    assert config.source == loader.EMBEDDED_SOURCE
    assert list(config.workspaces) == ["demo"]
    assert config.workspaces["demo"].type == "incus"  # first-party preference: incus, nspawn, microvm


def test_embedded_default_uses_whatever_backend_is_installed(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(configfile, "SYSTEM_CONFIG", str(tmp_path / "missing.toml"))
    manager = PluginManager(environ=CORE_ALONE).load([("nspawn-only", _TypesPlugin([fake_backends.NSPAWN]))])
    assert loader.load_config(None, manager.registry, environ={}).workspaces["demo"].type == "nspawn"


def test_embedded_default_without_backends_has_no_workspaces(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(configfile, "SYSTEM_CONFIG", str(tmp_path / "missing.toml"))
    config = loader.load_config(None, PluginManager(environ=CORE_ALONE).load().registry, environ={})
    assert config.source == loader.EMBEDDED_SOURCE and config.workspaces == {}


class _TypesPlugin:
    """A backend plugin that only declares types (enough for configuration tests)."""

    def __init__(self, wtypes: list[WorkspaceType]):
        self.wtypes = wtypes

    @ws.hookimpl
    def ws_workspace_types(self) -> list[WorkspaceType]:
        return list(self.wtypes)


# --- defaults and accepted values -------------------------------------------------------------------------


def test_defaults_of_every_section(resolve_text, state_dir) -> None:
    core = resolve_text("").core
    assert core.state_dir == state_dir
    assert (core.user.name, core.user.uid, core.user.gid, core.user.authorized_keys) == (None, None, None, None)
    net = core.network
    assert (net.bridge, str(net.subnet), net.host_address, str(net.gateway)) == (
        "sandbox-br",
        "192.168.83.0/24",
        None,
        "192.168.83.1",
    )
    assert (net.upstream, net.block_lan, net.dns_upstream) == (None, True, None)
    assert (core.nix.inherit_host, core.nix.substituters, core.nix.trusted_public_keys, core.nix.netrc_file) == (
        True,
        [],
        [],
        None,
    )
    assert (core.agent.claude_skip_permissions, core.agent.install_claude_code) == (True, False)
    assert (core.images.packages, core.images.sources) == ([], None)
    assert model.CoreConfig().state_dir == Path("/var/lib/ws")


def test_every_key_set(resolve_text, tmp_path) -> None:
    config = resolve_text(
        f"""
        [user]
        name = "alice"
        uid = 1500
        gid = 1600
        authorized_keys = ["ssh-ed25519 AAAAC3Nza alice@laptop"]
        [network]
        bridge = "wsbr0"
        subnet = "10.42.0.0/24"
        host_address = "10.42.0.254"
        upstream = "eth0"
        block_lan = false
        dns_upstream = ["9.9.9.9"]
        [nix]
        inherit_host = false
        substituters = ["https://cache.example.org"]
        trusted_public_keys = ["cache.example.org-1:abc="]
        netrc_file = "/etc/nix/netrc"
        [agent]
        claude_skip_permissions = false
        install_claude_code = true
        [images]
        packages = ["ripgrep", "g++"]
        sources = "/etc/ws/debian.sources"
        [workspaces.dev]
        type = "vm"
        ip = "10.42.0.11"
        image = "debian-trixie"
        autostart = true
        cpus = 4
        memory = "6G"
        host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB root@dev"
        cid = 4242
        network = "sandbox"
        mounts = [{{ host = "{tmp_path}", guest = "/src", read_only = true }}]
        [workspaces.dev.microvm]
        hypervisor = "qemu"
        """
    )
    core, dev = config.core, config.workspaces["dev"]
    assert core.user.name == "alice" and (core.user.uid, core.user.gid) == (1500, 1600)
    assert core.network.gateway == ipaddress.IPv4Address("10.42.0.254")
    assert core.network.dns_upstream == [ipaddress.IPv4Address("9.9.9.9")]
    assert core.nix.netrc_file == Path("/etc/nix/netrc") and not core.nix.inherit_host
    assert core.agent.install_claude_code and core.images.packages == ["ripgrep", "g++"]
    assert (dev.type, dev.ip, dev.prefixlen, dev.image, dev.autostart) == (
        "microvm",
        "10.42.0.11",
        24,
        "debian-trixie",
        True,
    )
    assert (dev.cpus, dev.memory_mib, dev.cid, dev.network) == (4, 6144, 4242, "sandbox")
    assert dev.host_key.startswith("ssh-ed25519 ")
    assert [(m.host_path, m.guest_path, m.read_only) for m in dev.mounts] == [(tmp_path, "/src", True)]
    assert dev.options.model_dump() == {"hypervisor": "qemu"}


@pytest.mark.parametrize(("alias", "name"), [("vm", "microvm"), ("container", "nspawn"), ("incus", "incus")])
def test_type_aliases(resolve_text, alias: str, name: str) -> None:
    assert resolve_text(f'[workspaces.dev]\ntype = "{alias}"\n').workspaces["dev"].type == name


@pytest.mark.parametrize(
    ("value", "mib"),
    [("4G", 4096), ("4096M", 4096), ("4GiB", 4096), ("1.5G", 1536), ("2048", 2048), (512, 512), ("1T", 1048576)],
)
def test_memory_sizes(value: str | int, mib: int) -> None:
    assert model.parse_memory_mib(value) == mib


def test_workspace_paths_under_state_dir(resolve_text, state_dir) -> None:
    paths = resolve_text('[workspaces.dev]\ntype = "incus"\n').workspaces["dev"].paths
    assert paths.root == state_dir / "workspaces" / "dev"
    assert (paths.work.name, paths.ssh_host_keys.name, paths.agent.name) == ("workspace", "ssh-host-keys", "agent")


def test_longest_names_that_fit_an_interface(resolve_text) -> None:
    config = resolve_text('[workspaces.abcdefghijkl]\ntype = "vm"\n[workspaces.b-3]\ntype = "container"\n')
    assert config.workspaces["abcdefghijkl"].host_interface == "vm-abcdefghijkl"  # exactly 15 bytes


# --- docs meta-test ---------------------------------------------------------------------------------------


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """Every pydantic model reachable from ``root`` through field annotations."""
    found: list[type[BaseModel]] = []

    def walk(annotation: object) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in found:
                found.append(annotation)
                hints = typing.get_type_hints(annotation)  # resolves forward references pydantic keeps
                for name in annotation.model_fields:
                    walk(hints[name])
            return
        for arg in typing.get_args(annotation):
            walk(arg)

    walk(root)
    return found


def test_docs_document_every_key_of_the_model() -> None:
    text = DOCS.read_text()
    models = _models(model.CoreConfig)
    assert {m.__name__ for m in models} >= {
        "CoreConfig",
        "UserConfig",
        "NetworkConfig",
        "NixConfig",
        "AgentConfig",
        "ImageConfig",
        "WorkspaceConfig",
        "MountConfig",
    }
    missing = [
        f"{m.__name__}.{name}"
        for m in models
        for name in m.model_fields
        if not re.search(rf"`{re.escape(name)}`|`\[{re.escape(name)}[].]", text)  # a key or a section
    ]
    assert not missing, f"keys not documented (as `key` or `[section]`) in {DOCS}: {missing}"


def test_every_example_in_the_docs_is_valid(resolve_text) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) >= 5
    for block in blocks:
        resolve_text(block.replace('state_dir = "/var/lib/ws"\n', ""))  # state stays in the test's folder
    full = resolve_text(blocks[-1].replace('state_dir = "/var/lib/ws"\n', ""))
    assert sorted(full.workspaces) == ["box", "dev", "web"]
