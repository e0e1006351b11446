"""First-boot steps: what cannot be a plain file because it depends on the guest's own state.

Every step is a shell snippet that is safe to run again: the unit runs the script on every boot, which
converges a guest that keeps its disk (microVM overlay) and costs nothing on ephemeral ones.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ws.types import ProvisionFile

SCRIPT = "/usr/local/lib/ws/firstboot"
UNIT_NAME = "ws-firstboot.service"
UNIT = f"/etc/systemd/system/{UNIT_NAME}"
TARGET_DROPIN = "/etc/systemd/system/multi-user.target.d/ws.conf"
"""A drop-in (a plain file, so every backend can deliver it) instead of ``.wants`` symlinks: it pulls in
the set-up unit and networkd/resolved, which Debian leaves disabled."""


@dataclass(frozen=True)
class FirstBootStep:
    name: str
    description: str
    script: str


def render(steps: list[FirstBootStep]) -> list[ProvisionFile]:
    """The script running the steps in order, its unit, and what enables both."""
    body = ["#!/bin/sh", "# Written by ws: idempotent guest set-up, run before sshd on every boot.", "set -eu", ""]
    for step in steps:
        body += [f"# --- {step.name}: {step.description}", f"echo {shlex.quote('ws-firstboot: ' + step.name)}"]
        body += [step.script.rstrip("\n"), ""]
    unit = (
        "[Unit]\n"
        "Description=ws guest set-up (login user, agent configuration)\n"
        "Before=ssh.service systemd-user-sessions.service\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart={SCRIPT}\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )
    dropin = f"# Written by ws.\n[Unit]\nWants={UNIT_NAME} systemd-networkd.service systemd-resolved.service\n"
    return [
        ProvisionFile(SCRIPT, "\n".join(body).encode(), mode=0o755),
        ProvisionFile(UNIT, unit.encode()),
        ProvisionFile(TARGET_DROPIN, dropin.encode()),
    ]
