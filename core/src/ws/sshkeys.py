"""What an SSH public key line looks like: ws copies only those into guests (never a pasted private key)."""

from __future__ import annotations

PUBLIC_KEY_PREFIXES = ("ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-")


def looks_public(line: str) -> bool:
    """A public key line, possibly with authorized_keys options in front; never a private key."""
    if "PRIVATE KEY" in line or "-----BEGIN" in line:
        return False
    return any(part.startswith(PUBLIC_KEY_PREFIXES) for part in line.split())
