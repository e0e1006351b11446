"""``ws provision show NAME``: print a workspace's provisioning bundle so users can audit what goes in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ws.cli.common import json_option, pass_ws_context, print_json

if TYPE_CHECKING:
    from ws.context import Context
    from ws.provision import Bundle


@click.group()
def provision() -> None:
    """Inspect what ws places into guests."""


@provision.command()
@click.argument("name")
@json_option
@pass_ws_context
def show(ctx: Context, name: str, as_json: bool) -> None:
    """Print NAME's bundle: files (path, mode, owner, content; secrets masked), mounts, first-boot steps.

    Nothing is started, created or generated.
    """
    workspace = ctx.workspace(name)
    bundle = ctx.provisioning(workspace, ctx.network(workspace.network).describe(workspace))
    if as_json:
        print_json(bundle.to_dict())
    else:
        click.echo(render_text(bundle))


def render_text(bundle: Bundle) -> str:
    data = bundle.to_dict()
    user = data["user"]
    lines = [
        f"Provisioning bundle of workspace {data['workspace']!r}",
        f"login user: {user['name']} (uid {user['uid']}, gid {user['gid']}, home {user['home']})",
        "",
        "Mounts (host -> guest):",
    ]
    lines += [f"  {m['host']} -> {m['guest']} ({'ro' if m['read_only'] else 'rw'})" for m in data["mounts"]]
    lines += ["", "First-boot steps (idempotent, run by ws-firstboot.service before sshd):"]
    lines += [f"  {step['name']}: {step['description']}" for step in data["firstboot"]]
    lines += ["", "Files placed into the root file system before first boot:"]
    for item in data["files"]:
        lines.append(f"\n{item['mode']} {item['owner']}:{item['group']} {item['path']} ({item['size']} bytes)")
        if item["secret"]:
            lines.append("    <secret: contents masked>")
        elif item["content"] is None:
            lines.append("    <binary contents>")
        else:
            lines += [f"    {line}".rstrip() for line in item["content"].splitlines()]
    return "\n".join(lines)
