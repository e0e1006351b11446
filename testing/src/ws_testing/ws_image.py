"""ws's own image (the one core's root tier builds and caches on the host) used inside a test VM in place:
hard-linked into the VM's exchange share and linked as ``STATE_DIR/images`` there, so no VM test builds it
under TCG (the VM has no network to build one anyway)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

TEST_STATE = Path("/var/tmp/ws-test-state")
"""The host's test state, whose image cache core's root tier fills."""


def share_ws_image(vm, state_dir: str):
    """Link ws's cached image into ``vm`` as ``state_dir/images``; returns the build (``ws.images``)."""
    import pytest
    from ws.config.model import CoreConfig
    from ws.images import current_image, recipe_for

    built = current_image(TEST_STATE, recipe_for(CoreConfig(state_dir=TEST_STATE), with_kernel=True))
    if built is None:
        pytest.fail("ws's test image is not built: run core's root tier (core/tests/root/test_image_build.py)")
    shared = vm.qemu.xchg / "ws-images" / built.name / built.hash
    shared.mkdir(parents=True, exist_ok=True)
    for item in built.path.iterdir():
        if not (shared / item.name).exists():
            os.link(item, shared / item.name)
    vm.succeed(f"mkdir -p {state_dir} && ln -sfn /mnt/xchg/ws-images {state_dir}/images")
    return built


def unshare_ws_images(vm) -> None:
    """Drop the links :func:`share_ws_image` made on the host's side."""
    shutil.rmtree(vm.qemu.xchg / "ws-images", ignore_errors=True)
