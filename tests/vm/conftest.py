"""Shared pieces of the vm tier's tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TEST_STATE = Path("/var/tmp/ws-test-state")
"""The host's test state, whose image cache core's root tier fills (the VM has no network to build one)."""


@pytest.fixture
def share_ws_image() -> Iterator[Callable]:
    """``share(vm, state_dir)``: ws's cached image, hard-linked into the VM's exchange share and linked as
    ``state_dir/images`` in the VM, used in place. Returns the build; the links go at teardown."""
    from ws.config.model import CoreConfig
    from ws.images import current_image, recipe_for

    shared_with = []

    def share(vm, state_dir: str):
        built = current_image(TEST_STATE, recipe_for(CoreConfig(state_dir=TEST_STATE), with_kernel=True))
        if built is None:
            pytest.fail("ws's test image is not built: run core's root tier (core/tests/root/test_image_build.py)")
        shared = vm.qemu.xchg / "ws-images" / built.name / built.hash
        shared.mkdir(parents=True, exist_ok=True)
        for item in built.path.iterdir():
            if not (shared / item.name).exists():
                os.link(item, shared / item.name)
        vm.succeed(f"mkdir -p {state_dir} && ln -sfn /mnt/xchg/ws-images {state_dir}/images")
        shared_with.append(vm)
        return built

    yield share
    for vm in shared_with:
        shutil.rmtree(vm.qemu.xchg / "ws-images", ignore_errors=True)
