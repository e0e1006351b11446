"""Shared pieces of the vm tier's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest


@pytest.fixture
def share_ws_image() -> Iterator[Callable]:
    """``share(vm, state_dir)``: ws's cached image, hard-linked into the VM's exchange share and linked as
    ``state_dir/images`` in the VM, used in place (:mod:`ws_testing.ws_image`). Returns the build; the links
    go at teardown."""
    from ws_testing.ws_image import share_ws_image as share_into
    from ws_testing.ws_image import unshare_ws_images

    shared_with = []

    def share(vm, state_dir: str):
        built = share_into(vm, state_dir)
        shared_with.append(vm)
        return built

    yield share
    for vm in shared_with:
        unshare_ws_images(vm)
