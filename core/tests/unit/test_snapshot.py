"""The configuration snapshot behind ``ws list``, ``ws status`` and completion (ws.snapshot): it stands for
exactly the configuration a full load gives, and anything the load depends on makes it invalid (the
file's content even with size and mtime restored, the plugins and their code, the leases, the environment,
ws's version), as does a file others could have written."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import fake_backends
import pytest
from ws import snapshot
from ws.context import load_context
from ws.plugins import PluginManager

from conftest import CORE_ALONE

CONFIG = """
[fake]
[workspaces.alpha]
type = "vm"
network = "fakenet"
cpus = 2
[[workspaces.alpha.mounts]]
host = "/srv/data"
guest = "/data"
read_only = true
[workspaces.beta]
type = "container"
network = "fakenet"
[workspaces.gamma]
type = "incus"
network = "fakenet"
[workspaces.gamma.incus]
socket = "/run/other.socket"
"""


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {**CORE_ALONE, "WS_CACHE_DIR": str(tmp_path / "cache")}


@pytest.fixture
def config(write_config) -> Path:
    return write_config(CONFIG.replace("[fake]\n", ""))


def manager(*extra: tuple[str, object]) -> PluginManager:
    return PluginManager(environ=CORE_ALONE).load([("fake", fake_backends), *extra])


def save(path: Path, plugins: PluginManager, environ: dict[str, str]):
    """What the CLI does on a full load: the key first, then the load, then the snapshot."""
    pending = snapshot.prepare(str(path), plugins, environ)
    ctx = load_context(path, plugins, environ)
    pending.save(ctx.config, ctx.registry)
    return ctx


def valid(path: Path, plugins: PluginManager, environ: dict[str, str]) -> snapshot.Snapshot | None:
    pending = snapshot.prepare(str(path), plugins, environ)
    return pending and snapshot.load(pending)


def test_the_snapshot_stands_for_the_loaded_configuration(config, environ) -> None:
    ctx = save(config, manager(), environ)
    found = valid(config, manager(), environ)
    assert found is not None
    assert (found.source, found.state_dir) == (str(config), str(ctx.state.root))
    workspaces = found.workspaces()
    assert workspaces == {name: snapshot.plain(w) for name, w in ctx.config.workspaces.items()}
    for name, workspace in ctx.config.workspaces.items():
        assert workspaces[name].options == snapshot.plain(workspace).options
    assert workspaces["gamma"].options == {"socket": "/run/other.socket"}, "plain data, merged"
    assert workspaces["alpha"].mounts[0].host_path == Path("/srv/data")
    assert found.names == sorted(ctx.config.workspaces)
    assert found.owners == {"microvm": "fake", "nspawn": "fake", "incus": "fake"}


def test_the_snapshot_is_private(config, environ, tmp_path) -> None:
    save(config, manager(), environ)
    folder = tmp_path / "cache" / snapshot.FOLDER
    [stored] = folder.iterdir()
    assert folder.stat().st_mode & 0o777 == 0o700 and stored.stat().st_mode & 0o777 == 0o600


def test_an_edit_with_size_and_mtime_restored_invalidates(config, environ) -> None:
    save(config, manager(), environ)
    before = config.stat()
    config.write_text(config.read_text().replace("cpus = 2", "cpus = 3"))
    os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert config.stat().st_size == before.st_size and config.stat().st_mtime_ns == before.st_mtime_ns
    assert valid(config, manager(), environ) is None
    ctx = save(config, manager(), environ)
    assert valid(config, manager(), environ).workspaces()["alpha"].cpus == ctx.config.workspaces["alpha"].cpus == 3


def test_a_plugin_installed_removed_or_changed_invalidates(config, environ, tmp_path, monkeypatch) -> None:
    save(config, manager(), environ)
    assert valid(config, manager(), environ) is not None
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "ws_plugin_extra.py").write_text("import ws\n\n@ws.hookimpl\ndef ws_networks():\n    return []\n")
    import ws_plugin_extra

    assert valid(config, manager(("extra", ws_plugin_extra)), environ) is None, "installed"
    save(config, manager(("extra", ws_plugin_extra)), environ)
    assert valid(config, manager(("extra", ws_plugin_extra)), environ) is not None
    assert valid(config, manager(), environ) is None, "removed"
    save(config, manager(("extra", ws_plugin_extra)), environ)
    with (tmp_path / "ws_plugin_extra.py").open("a") as file:
        file.write("# changed\n")
    assert valid(config, manager(("extra", ws_plugin_extra)), environ) is None, "its code changed"


def test_changed_leases_invalidate(config, environ, state_dir) -> None:
    save(config, manager(), environ)
    leases = state_dir / "leases.json"
    leases.parent.mkdir(parents=True, exist_ok=True)
    leases.write_text(json.dumps({"gamma": "10.77.0.100"}))
    assert valid(config, manager(), environ) is None
    save(config, manager(), environ)
    assert valid(config, manager(), environ) is None, "leases written just before the load: not saved"
    os.utime(leases, (time.time() - 10, time.time() - 10))
    save(config, manager(), environ)
    assert valid(config, manager(), environ) is not None
    leases.write_text(json.dumps({"gamma": "10.77.0.101"}))
    assert valid(config, manager(), environ) is None


@pytest.mark.parametrize("variable", snapshot.KEY_ENVIRONMENT)
def test_the_plugin_environment_invalidates(config, environ, variable) -> None:
    save(config, manager(), environ)
    assert valid(config, manager(), {**environ, variable: "something"}) is None


def test_another_ws_version_invalidates(config, environ, monkeypatch) -> None:
    save(config, manager(), environ)
    monkeypatch.setattr(snapshot, "__version__", "99.0")
    assert valid(config, manager(), environ) is None


def test_another_configuration_file_has_its_own_snapshot(config, environ, write_config) -> None:
    other = write_config(CONFIG.replace("[fake]\n", "").replace("beta", "delta"), name="other.toml")
    save(config, manager(), environ)
    save(other, manager(), environ)
    assert set(valid(config, manager(), environ).names) == {"alpha", "beta", "gamma"}
    assert set(valid(other, manager(), environ).names) == {"alpha", "delta", "gamma"}


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_snapshot_others_could_write_is_ignored(config, environ, tmp_path, what) -> None:
    save(config, manager(), environ)
    folder = tmp_path / "cache" / snapshot.FOLDER
    [stored] = folder.iterdir()
    (stored if what == "file" else folder).chmod(0o666 if what == "file" else 0o777)
    assert valid(config, manager(), environ) is None


def test_an_in_process_plugin_object_gets_no_snapshot(config, environ) -> None:
    class Plugin:
        pass

    assert snapshot.prepare(str(config), manager(("object", Plugin())), environ) is None


def test_a_missing_file_gets_no_snapshot(tmp_path, environ) -> None:
    assert snapshot.prepare(str(tmp_path / "absent.toml"), manager(), environ) is None


# --- through the console script ------------------------------------------------------------------------


def test_list_and_status_print_the_same_with_and_without_the_snapshot(run_ws, write_config, state_dir) -> None:
    config = write_config(CONFIG.replace("[fake]\n", ""))
    env = {"WS_CONFIG": str(config)}
    assert run_ws("up", "beta", env=env).returncode == 0
    os.utime(state_dir / "leases.json", (time.time() - 10, time.time() - 10))
    commands = [("list",), ("list", "--json"), ("status", "beta", "--json"), ("status", "alpha"), ("status", "no")]
    cache = Path(os.environ["WS_CACHE_DIR"]) / snapshot.FOLDER
    slot = snapshot.prepare(str(config), manager(), {}).slot

    def outputs() -> list[tuple[int, str, str]]:
        results = [run_ws(*command, env=env) for command in commands]
        return [(r.returncode, r.stdout, r.stderr) for r in results]

    (cache / slot).unlink(missing_ok=True)
    without = outputs()  # the first command loads in full and writes the snapshot; the others use it
    assert (cache / slot).exists()
    (cache / slot).unlink()
    first_of_each = []
    for command in commands:
        (cache / slot).unlink(missing_ok=True)
        result = run_ws(*command, env=env)
        first_of_each.append((result.returncode, result.stdout, result.stderr))
    assert without == first_of_each == outputs()
    assert "beta" in without[0][1] and "running" in without[0][1]
    assert without[-1][0] == 2 and "no workspace 'no'" in without[-1][2]


def test_a_removed_plugin_is_not_answered_from_the_snapshot(run_ws, write_config, tmp_path) -> None:
    config = write_config(CONFIG.replace("[fake]\n", ""))
    env = {"WS_CONFIG": str(config)}
    assert run_ws("list", env=env).returncode == 0
    assert run_ws("list", env=env).returncode == 0
    shutil.rmtree(tmp_path / "site" / "ws_fake_backend-0.dist-info")
    result = run_ws("list", env=env)
    assert result.returncode == 3 and "vm" in result.stderr, result.stderr


def test_a_backend_without_ws_status_many_is_asked_ws_status_and_the_snapshot_kept(run_ws, write_config, state_dir):
    """The fake backends lack the batch hook: list loads in full for them, and leaves the valid snapshot."""
    config = write_config(CONFIG.replace("[fake]\n", ""))
    env = {"WS_CONFIG": str(config)}
    stored = Path(os.environ["WS_CACHE_DIR"]) / snapshot.FOLDER / snapshot.prepare(str(config), manager(), {}).slot
    stored.unlink(missing_ok=True)
    first = run_ws("list", env=env)
    written = stored.stat().st_mtime_ns
    assert run_ws("list", env=env).stdout == first.stdout
    assert stored.stat().st_mtime_ns == written
    assert [call[2] for call in fake_backends.calls(state_dir)].count("status") == 6, "3 workspaces, twice"
