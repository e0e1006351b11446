"""Test tiers for the whole repository (see docs/testing.md).

* unit: no root, no daemons, seconds; every test without another tier marker gets this marker.
* root: real kernel objects and daemons on this host; needs root, and fails (never skips) without it.
* vm:   inside a qemu test VM booted by the suite (tests/vm).

Select a tier with ``-m unit``, ``-m root`` or ``-m vm``.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

TIERS = ("unit", "root", "vm")
_cache_dir: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """ws's caches (the configuration snapshots, :mod:`ws.cache`) go to a folder of this session, never to
    the user's or root's own; tests that filter ``WS_*`` out of a child's environment keep this one."""
    global _cache_dir
    _cache_dir = tempfile.mkdtemp(prefix="ws-test-cache-")
    os.environ["WS_CACHE_DIR"] = _cache_dir


def pytest_unconfigure(config: pytest.Config) -> None:
    if _cache_dir is not None:
        shutil.rmtree(_cache_dir, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.get_closest_marker(tier) for tier in TIERS):
            item.add_marker(pytest.mark.unit)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.fail("root-tier test needs root: run the root tier as root (sudo), it does not skip", pytrace=False)
