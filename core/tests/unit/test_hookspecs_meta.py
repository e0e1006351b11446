"""The hook contract stays documented and tested: every hook spec has a docstring, a section in
docs/plugins.md, an implementation in the example plugin, and a test that names it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ws import hookspecs
from ws.plugins import PluginManager

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "plugins.md"
TEST_FOLDERS = ("tests", "core/tests", "plugins")
HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("ws_"))


def test_the_contract_has_hooks() -> None:
    assert len(HOOKS) >= 15 and "ws_create" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_spec_has_a_docstring(hook: str) -> None:
    assert (getattr(hookspecs, hook).__doc__ or "").strip(), f"{hook} has no docstring in ws.hookspecs"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_in_the_plugin_guide(hook: str) -> None:
    headings = [line for line in DOC.read_text().splitlines() if line.startswith("#")]
    assert any(re.search(rf"\b{hook}\b", line) for line in headings), f"docs/plugins.md has no heading for {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_named_by_a_test(hook: str) -> None:
    me = Path(__file__).resolve()
    tests = [
        path
        for folder in TEST_FOLDERS
        for path in sorted((REPO / folder).rglob("test_*.py"))
        if path.resolve() != me and "example_plugin" not in path.parts
    ]
    assert any(re.search(rf"\b{hook}\b", path.read_text()) for path in tests), f"no test names {hook}"


def test_the_example_plugin_implements_every_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "tests" / "example_plugin" / "src"))
    import ws_plugin_example

    manager = PluginManager().pm
    missing = [hook for hook in HOOKS if manager.parse_hookimpl_opts(ws_plugin_example, hook) is None]
    assert missing == [], f"tests/example_plugin lacks {missing}: plugin authors copy it, keep it complete"
