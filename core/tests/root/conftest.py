"""Shared fixtures of core's root tier.

``built_image``: ws's default image (``debian-bookworm`` with a kernel, so nspawn, Incus and qemu tests can
all use the one build) made by the real mmdebstrap once, then reused from the persistent cache
``/var/tmp/ws-test-state`` by every later test and test run (it is content-addressed: a changed recipe
builds anew).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TEST_STATE = Path("/var/tmp/ws-test-state")


@pytest.fixture(scope="session")
def built_image():
    """The real ``BuiltImage`` of ``recipe_for(CoreConfig(), with_kernel=True)`` in ``TEST_STATE``."""
    from ws.config.model import CoreConfig
    from ws.images import ensure_image, recipe_for
    from ws.images.progress import ProgressDisplay

    if os.geteuid() != 0:
        pytest.fail("the root tier must run as root")
    if shutil.which("mmdebstrap") is None:
        pytest.fail("building ws's image needs mmdebstrap: apt-get install mmdebstrap")
    recipe = recipe_for(CoreConfig(state_dir=TEST_STATE), with_kernel=True)
    with ProgressDisplay("test image debian-bookworm", tty=False) as progress:
        return ensure_image(TEST_STATE, recipe, progress=progress)
