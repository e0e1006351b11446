"""The WireGuard key pair, generated on this host (X25519); the private key never leaves it and is kept
in a 0600 file in wg's base64 format."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ws_plugin_pia.store import write_private

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class KeyPair:
    public: str
    """base64, as addKey and wg take it"""
    private: bytes = field(repr=False)
    """base64 of the raw private key"""

    def store(self, path: Path) -> None:
        """Keep the private key (0600): done once PIA accepted the public key, so the stored key always
        matches the stored session."""
        write_private(path, self.private + b"\n")


def new_pair() -> KeyPair:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    key = X25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return KeyPair(_public(key), base64.b64encode(raw))


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
