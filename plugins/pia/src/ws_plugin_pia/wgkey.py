"""The WireGuard key pair, generated on this host (X25519); the private key never leaves it and is kept
in a 0600 file in wg's base64 format."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from ws_plugin_pia.store import write_private

if TYPE_CHECKING:
    from pathlib import Path


def generate(path: Path) -> str:
    """A new key pair: the private key written to ``path`` (0600); returns the public key (base64)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    key = X25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    write_private(path, base64.b64encode(raw) + b"\n")
    return _public(key)


def public_key(path: Path) -> str | None:
    """The public key of the stored private key, None when there is none."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    try:
        raw = base64.b64decode(path.read_bytes().strip(), validate=True)
        return _public(X25519PrivateKey.from_private_bytes(raw))
    except (OSError, ValueError):
        return None


def _public(key) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()
