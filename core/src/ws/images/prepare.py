"""Core prepares the image a workspace is created from, so backends only realise it.

For ws's own images the recipe follows from the configuration and the type's ``image_format`` (a type
that boots a kernel gets the build with kernel and initrd; a type without images gets none). A container
type takes a cached build of the same recipe plus a kernel as it is rather than building a second image:
the kernel is inert in a container. Any other ``image`` value is a reference the backend resolves itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ws.images.recipe import Recipe, is_ws_image, recipe_for
from ws.images.store import BuiltImage, current_image, ensure_image
from ws.preparation import PreparedImage

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ws.config.model import CoreConfig
    from ws.types import Workspace, WorkspaceType


def chosen_recipe(core: CoreConfig, state_dir: Path, workspace: Workspace, wtype: WorkspaceType) -> Recipe | None:
    """The recipe ``ws up`` would use for the workspace (None for a backend's own image reference)."""
    if not is_ws_image(workspace.image) or wtype.image_format == "none":
        return None
    if wtype.image_format == "kernel":
        return recipe_for(core, workspace.image, with_kernel=True)
    plain = recipe_for(core, workspace.image)
    if current_image(state_dir, plain) is None:
        with_kernel = recipe_for(core, workspace.image, with_kernel=True)
        if current_image(state_dir, with_kernel) is not None:
            return with_kernel
    return plain


def planned_image(core: CoreConfig, state_dir: Path, workspace: Workspace, wtype: WorkspaceType) -> PreparedImage:
    """What :func:`prepare_image` would return, without building: enough for the fingerprint and dry runs."""
    recipe = chosen_recipe(core, state_dir, workspace, wtype)
    if recipe is None:
        return PreparedImage(name=workspace.image, reference=workspace.image)
    return PreparedImage(name=recipe.name, hash=recipe.hash)


def prepare_image(
    core: CoreConfig, state_dir: Path, workspace: Workspace, wtype: WorkspaceType, progress: Callable[[str], None]
) -> PreparedImage:
    """The image to create the workspace from, built now when the cache lacks it."""
    recipe = chosen_recipe(core, state_dir, workspace, wtype)
    if recipe is None:
        return PreparedImage(name=workspace.image, reference=workspace.image)
    built = ensure_image(state_dir, recipe, progress=lambda phase: progress(f"image {recipe.name}: {phase}"))
    return from_build(built)


def from_build(built: BuiltImage) -> PreparedImage:
    recipe = built.recipe
    return PreparedImage(
        name=built.name,
        hash=built.hash,
        directory=built.path,
        rootfs_tar=built.rootfs_tar,
        kernel=built.kernel,
        initrd=built.initrd,
        properties={
            "os": "debian",
            "release": recipe.suite,
            "architecture": recipe.architecture,
            "created": built.created,
        },
    )
