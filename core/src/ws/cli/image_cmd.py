"""``ws image build|list|remove``: ws's own root file system images (see docs/images.md)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from ws.cli.common import json_option, pass_ws_context, print_json

if TYPE_CHECKING:
    from ws.context import Context
    from ws.images import BuiltImage

MIB = 1024 * 1024


@click.group()
def image() -> None:
    """Build, list or remove ws's workspace images."""


@image.command()
@click.argument("name", default="debian-bookworm")
@click.option("--kernel", "with_kernel", is_flag=True, help="Include a kernel and initrd (for microVMs).")
@json_option
@pass_ws_context
def build(ctx: Context, name: str, with_kernel: bool, as_json: bool) -> None:
    """Build image NAME for the current configuration, unless an identical build is cached."""
    from ws.images import ensure_image, recipe_for
    from ws.images.progress import ProgressDisplay

    recipe = recipe_for(ctx.config.core, name, with_kernel=with_kernel)
    started = time.monotonic()
    with ProgressDisplay(f"image {name}") as progress:
        built = ensure_image(ctx.state.root, recipe, progress=progress)
    if as_json:
        print_json(_describe(built, {built.hash}))
        return
    how = f"built in {time.monotonic() - started:.0f} s" if built.fresh else "up to date (cached)"
    click.echo(f"{built.name} {built.hash}: {how}, {built.size / MIB:.0f} MiB in {built.path}")


@image.command(name="list")
@json_option
@pass_ws_context
def list_(ctx: Context, as_json: bool) -> None:
    """Show the cached builds; 'current' marks those the configuration asks for."""
    from ws.images import list_images

    images = list_images(ctx.state.root)
    current = _current_hashes(ctx, {image.name for image in images})
    if as_json:
        print_json([_describe(image, current) for image in images])
        return
    if not images:
        click.echo("no images built yet (ws image build)")
        return
    click.echo(f"{'NAME':<20} {'HASH':<16} {'SIZE':>9}  {'CREATED':<20}  KERNEL  CURRENT")
    for item in images:
        click.echo(
            f"{item.name:<20} {item.hash:<16} {item.size / MIB:>5.0f} MiB  {item.created:<20}  "
            f"{'yes' if item.kernel else 'no':<6}  {'*' if item.hash in current else ''}"
        )


@image.command()
@click.argument("name")
@click.option("--hash", "hashes", multiple=True, metavar="HASH", help="Remove this build (repeatable).")
@click.option("--all", "remove_all", is_flag=True, help="Remove every build of NAME, current or not.")
@json_option
@pass_ws_context
def remove(ctx: Context, name: str, hashes: tuple[str, ...], remove_all: bool, as_json: bool) -> None:
    """Remove builds of NAME: by default the current ones (the next build makes them anew)."""
    from ws.errors import UsageError
    from ws.images import remove_image

    if hashes and remove_all:
        raise UsageError("give --hash or --all, not both")
    if remove_all:
        selected = None
    elif hashes:
        selected = list(hashes)
    else:
        present = {image.hash for image in _images_named(ctx, name)}
        selected = sorted(_current_hashes(ctx, {name}) & present)
    removed = remove_image(ctx.state.root, name, selected)
    if as_json:
        print_json({"name": name, "removed": removed})
    elif removed:
        click.echo(f"removed {name} {', '.join(removed)}")
    else:
        click.echo(f"no build of {name} to remove")


def _images_named(ctx: Context, name: str) -> list[BuiltImage]:
    from ws.images import list_images

    return [image for image in list_images(ctx.state.root) if image.name == name]


def _current_hashes(ctx: Context, names: set[str]) -> set[str]:
    """Hashes the configuration would use, with and without a kernel, for each of ws's image ``names``."""
    from ws.images import is_ws_image, recipe_for

    return {
        recipe_for(ctx.config.core, name, with_kernel=kernel).hash
        for name in names
        if is_ws_image(name)
        for kernel in (False, True)
    }


def _describe(image: BuiltImage, current: set[str]) -> dict:
    return {
        "name": image.name,
        "hash": image.hash,
        "size": image.size,
        "created": image.created,
        "current": image.hash in current,
        "kernel": image.kernel is not None,
        "path": str(image.path),
        "rootfs_tar": str(image.rootfs_tar),
        "rootfs_sha256": image.manifest["files"]["rootfs.tar"]["sha256"],
    }
