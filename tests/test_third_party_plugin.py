"""The whole entry-point path, as a user gets it: core, the example backend and a broken plugin installed
with uv into a throw-away virtual environment, then driven by that environment's ``ws`` console script.

Proves that a third-party distribution is discovered through its ``ws`` entry point, listed by
``ws plugins``, that its type is usable in the configuration and the whole lifecycle, that a broken
distribution next to it only costs a warning (or exit status 3 in strict mode), and that the
WS_DISABLE_PLUGINS filter applies to installed distributions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from ws import hookspecs, identity

REPO = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = (REPO / "core", REPO / "tests" / "example_plugin", REPO / "tests" / "broken_plugin")
EXAMPLE_VERSION = tomllib.loads((REPO / "tests" / "example_plugin" / "pyproject.toml").read_text())["project"][
    "version"
]
BROKEN_WARNING = "warning: plugin 'broken' from distribution 'ws-plugin-broken' failed to load"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, uv: list[str]) -> Path:
    """A fresh venv with ws, ws-plugin-example and ws-plugin-broken installed (not editable)."""
    root = tmp_path_factory.mktemp("venv")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    steps = [
        [*uv, "venv", "--quiet", "--python", sys.executable, str(root / "venv")],
        [*uv, "pip", "install", "--quiet", "--python", str(root / "venv" / "bin" / "python"), *map(str, DISTRIBUTIONS)],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, env=environ, timeout=300, check=False)
        assert done.returncode == 0, f"{' '.join(step)} failed:\n{done.stderr}"
    return root / "venv"


@pytest.fixture
def ws(venv: Path, tmp_path: Path):
    """Run the venv's ``ws`` with a clean WS_* environment and its own entry-point cache."""

    def run(*args: str, code: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("WS_") or k == "WS_CACHE_DIR"}
        environ.update(XDG_CACHE_HOME=str(tmp_path / "cache"), **env)
        done = subprocess.run(
            [str(venv / "bin" / "ws"), *args], capture_output=True, text=True, env=environ, timeout=60, check=False
        )
        assert done.returncode == code, f"ws {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        return done

    return run


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ws.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n\n[workspaces.demo]\ntype = "example"\nnetwork = "example"\n')
    return path


def test_installed_plugin_is_listed_and_the_broken_one_reported(ws) -> None:
    done = ws("plugins", "--json")
    listing = json.loads(done.stdout)
    [example] = [info for info in listing["plugins"] if info["name"] == "example"]
    assert (example["distribution"], example["version"]) == ("ws-plugin-example", EXAMPLE_VERSION)
    assert example["types"] == ["example"]
    assert example["hooks"] == sorted(name for name in vars(hookspecs) if name.startswith("ws_"))
    [broken] = listing["failed"]
    assert (broken["name"], broken["distribution"]) == ("broken", "ws-plugin-broken")
    assert "No module named 'ws_plugin_broken_missing_dependency'" in broken["error"]
    assert BROKEN_WARNING in done.stderr

    assert "example-info" in ws("--help").stdout, "the plugin's command is part of ws's help"


def test_the_plugin_type_is_usable_through_the_whole_lifecycle(ws, config: Path, tmp_path: Path) -> None:
    demo = json.loads(ws("--config", str(config), "config", "show", "--json").stdout)["workspaces"]["demo"]
    assert (demo["type"], demo["host_interface"]) == ("example", "ex-demo")
    assert demo["mac"] == identity.mac_address("example-demo")
    assert demo["ip"].startswith("10.77.0.") and 10 <= int(demo["ip"].rsplit(".", 1)[1]) <= 49  # the example network

    up = ws("--config", str(config), "up", "demo")
    assert BROKEN_WARNING in up.stderr, "the broken plugin is reported, and ws works on"
    assert json.loads(ws("--config", str(config), "status", "demo", "--json").stdout)["state"] == "running"
    ws("--config", str(config), "exec", "demo", "--", "sh", "-c", "exit 7", code=7)
    assert "hello" in ws("--config", str(config), "example-info").stdout
    assert ws("--config", str(config), "down", "demo").stdout == "demo: stopped\n"
    ws("--config", str(config), "destroy", "demo", "--purge", "--yes")
    assert not (tmp_path / "state" / "example" / "workspace-demo").exists()
    assert not (tmp_path / "state" / "workspaces" / "demo").exists()


def test_a_disabled_plugin_leaves_its_type_missing(ws, config: Path) -> None:
    done = ws("--config", str(config), "config", "show", code=3, WS_DISABLE_PLUGINS="example,ws-plugin-broken")
    assert "workspaces.demo.type: no installed plugin provides workspace type 'example'" in done.stderr
    assert "warning" not in done.stderr, "a plugin disabled by distribution name is not even imported"


def test_strict_mode_makes_the_broken_plugin_an_error(ws) -> None:
    done = ws("plugins", code=3, WS_STRICT_PLUGINS="1")
    assert "plugin 'broken' from distribution 'ws-plugin-broken' failed to load" in done.stderr
    assert "Traceback" not in done.stderr
    assert "example" in ws("plugins", WS_STRICT_PLUGINS="1", WS_PLUGINS="example").stdout
