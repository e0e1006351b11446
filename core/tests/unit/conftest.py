"""Shared fixtures of core's unit tier: configuration files, the in-process test backend, and ways to run
``ws`` both in-process (click's CliRunner) and as the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # helper modules (fake_backends) under --import-mode=importlib

import fake_backends  # noqa: E402

WS = Path(sys.executable).parent / "ws"
"""The console script of the venv running the tests."""

ONLY_FAKE = {"WS_PLUGINS": "fake"}
"""Entry points filtered to the test backend: installed first-party backends must not claim its types."""
CORE_ALONE = {"WS_PLUGINS": ""}
"""No entry points at all: what a host with only the ``ws`` distribution sees."""


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def write_config(tmp_path: Path, state_dir: Path) -> Callable[..., Path]:
    """Write ws.toml from TOML text (dedented); ``state_dir`` points into the test's folder unless given."""

    def write(text: str = "", name: str = "ws.toml") -> Path:
        body = textwrap.dedent(text)
        if "state_dir" not in body:
            body = f'state_dir = "{state_dir}"\n' + body
        path = tmp_path / name
        path.write_text(body)
        return path

    return write


@pytest.fixture
def plugins():
    """A plugin manager with core's built-ins and the fake backends (no installed entry points)."""
    from ws.plugins import PluginManager

    return PluginManager(environ=CORE_ALONE).load([("fake", fake_backends)])


@pytest.fixture
def resolve_text(plugins, tmp_path: Path, state_dir: Path) -> Callable[[str], object]:
    """TOML text -> resolved Config (raises ConfigError like the CLI would)."""
    import tomllib

    from ws.config.resolve import resolve

    def run(text: str, source: str = "test.toml"):
        data = tomllib.loads(textwrap.dedent(text))
        data.setdefault("state_dir", str(state_dir))
        return resolve(source, data, plugins.registry)

    return run


@pytest.fixture
def cli_invoke(monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """Run ``ws ARGS`` in-process with the fake backends; returns click's Result (stdout/stderr apart)."""
    from click.testing import CliRunner
    from ws.cli.common import CliState
    from ws.cli.main import cli

    monkeypatch.setenv("WS_PLUGINS", "")
    monkeypatch.delenv("WS_CONFIG", raising=False)

    def invoke(*args: str, fake: bool = True, input: str | None = None):
        state = CliState(extra_plugins=[("fake", fake_backends)] if fake else [])
        return CliRunner().invoke(cli, list(args), obj=state, input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def run_ws(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run the installed ``ws`` console script; ``fake=True`` makes the fake backends an entry point."""
    plugin_env = fake_backends.install_entry_point(tmp_path / "site")

    def run(*args: str, fake: bool = True, env: dict[str, str] | None = None, timeout: float = 60):
        environ = {k: v for k, v in os.environ.items() if not k.startswith("WS_") or k == "WS_CACHE_DIR"}
        environ.update(ONLY_FAKE if fake else CORE_ALONE)
        if fake:
            environ.update(plugin_env)
        environ.update(env or {})
        return subprocess.run(
            [str(WS), *args], capture_output=True, text=True, env=environ, timeout=timeout, check=False
        )

    return run


def ok(result) -> object:
    """The CliRunner result of a command that must succeed (its output shown when it did not)."""
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result
