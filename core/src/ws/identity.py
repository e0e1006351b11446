"""Identities derived from a workspace's name, in one place so every backend agrees (see origin.md).

They are deterministic so that a re-created workspace keeps its MAC (no stale ARP entries on the bridge),
its vsock CID and its names.
"""

from __future__ import annotations

import hashlib

VSOCK_CID_BASE = 100


def mac_address(seed: str) -> str:
    """Locally administered unicast MAC ``02:xx:xx:xx:xx:xx`` from ``sha256(seed)``, e.g. ``seed="vm-dev"``."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return "02:" + ":".join(digest[i : i + 2] for i in range(0, 10, 2))


def vsock_cid(name: str) -> int:
    """``100 + first 24 bits of sha256(name)``: always inside the valid range 3..4294967294."""
    return VSOCK_CID_BASE + int(hashlib.sha256(name.encode()).hexdigest()[:6], 16)


def hostname(name: str) -> str:
    """The guest's host name and its /etc/hosts and known_hosts name on the host."""
    return f"workspace-{name}"


def instance_name(name: str) -> str:
    """What the backend calls the instance (Incus instance, nspawn machine, VM)."""
    return f"workspace-{name}"
