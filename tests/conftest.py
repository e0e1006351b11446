"""Fixtures for the repository-level tests.

``example_plugin``: the example backend of tests/example_plugin (the worked example of docs/plugins.md),
importable in-process. It is not installed into the development environment, so it is never discovered
through its entry point here; register it explicitly, e.g.
``CliState(extra_plugins=[("example", example_plugin)])`` or ``PluginManager().load(extra=[...])``.

``uv``: the argv prefix that runs uv, for tests that build wheels or throw-away virtual environments.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN_SRC = Path(__file__).parent / "example_plugin" / "src"


@pytest.fixture
def example_plugin(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_SRC))
    import ws_plugin_example

    return ws_plugin_example


@pytest.fixture(scope="session")
def uv() -> list[str]:
    """uv from PATH, from scripts/bootstrap's private copy, beside this Python, or as a module."""
    candidates = [
        shutil.which("uv"),
        REPO / ".cache" / "uv-bootstrap" / "bin" / "uv",
        Path(sys.executable).parent / "uv",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return [str(candidate)]
    if subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, check=False).returncode == 0:
        return [sys.executable, "-m", "uv"]
    pytest.fail("uv is needed for wheels and throw-away venvs: run scripts/bootstrap or pip install uv", pytrace=False)
