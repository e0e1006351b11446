"""The workspace's TAP ``vm-NAME`` on the network's bridge; qemu opens it by name (as root, before it drops
to the login user), so ws creates and deletes it and qemu never needs network privileges."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ws.errors import WsError


def exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def create(name: str, bridge: str, mtu: int) -> None:
    _ip("tuntap", "add", "dev", name, "mode", "tap", "vnet_hdr")
    _ip("link", "set", "dev", name, "mtu", str(mtu), "master", bridge, "up")


def remove(name: str) -> None:
    """Delete the TAP if it exists and is a TAP (a name reused by something else is left alone)."""
    if exists(name) and Path(f"/sys/class/net/{name}/tun_flags").exists():
        _ip("link", "delete", "dev", name)


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise WsError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
