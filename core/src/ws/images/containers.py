"""Which build of ws's image a container backend (Incus, nspawn) uses."""

from __future__ import annotations

from pathlib import Path

from ws.images.build import Progress
from ws.images.recipe import recipe_for
from ws.images.store import BuiltImage, current_image, ensure_image


def container_image(state_dir: Path, core_config, name: str, progress: Progress | None = None) -> BuiltImage:
    """ws's build of ``name`` for containers; a cached build of the same recipe plus a kernel (made for
    microVMs) is taken as it is rather than building a second image: the kernel is inert in a container."""
    recipe = recipe_for(core_config, name)
    for candidate in (recipe, recipe_for(core_config, name, with_kernel=True)):
        if (cached := current_image(state_dir, candidate)) is not None:
            return cached
    return ensure_image(state_dir, recipe, progress=progress)
