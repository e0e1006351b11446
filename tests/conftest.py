"""Fixtures for the repository-level tests.

``example_plugin``: the example backend of tests/example_plugin (the worked example of docs/plugins.md),
importable in-process. It is not installed into the development environment, so it is never discovered
through its entry point here; register it explicitly, e.g.
``CliState(extra_plugins=[("example", example_plugin)])`` or ``PluginManager().load(extra=[...])``.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

EXAMPLE_PLUGIN_SRC = Path(__file__).parent / "example_plugin" / "src"


@pytest.fixture
def example_plugin(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_SRC))
    import ws_plugin_example

    return ws_plugin_example
