"""ws's own root file system images, built with mmdebstrap and cached by the hash of their recipe.

Backends call :func:`recipe_for` and :func:`ensure_image` for ``image = "debian-bookworm"`` (see
:func:`is_ws_image`) and resolve every other ``image`` reference themselves. See docs/images.md.
"""

from ws.images.recipe import DEFAULT_IMAGE, Recipe, is_ws_image, recipe_for
from ws.images.store import BuiltImage, current_image, ensure_image, list_images, remove_image

__all__ = [
    "DEFAULT_IMAGE",
    "BuiltImage",
    "Recipe",
    "current_image",
    "ensure_image",
    "is_ws_image",
    "list_images",
    "recipe_for",
    "remove_image",
]
