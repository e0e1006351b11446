"""The workspace's SSH host key: generated once on the host, kept across re-creation.

The key lives in the workspace's host folder, which backends mount read-only at ``/etc/ssh-host-keys``.
Keeping it on the host is what lets ``known_hosts`` pin it: a re-created guest presents the same key.
"""

from __future__ import annotations

import base64
import contextlib
import os
from pathlib import Path

from ws.errors import WsError

PRIVATE_NAME = "ssh_host_ed25519_key"
PUBLIC_NAME = PRIVATE_NAME + ".pub"
GUEST_DIR = "/etc/ssh-host-keys"
GUEST_PRIVATE = f"{GUEST_DIR}/{PRIVATE_NAME}"


def ensure_host_key(directory: Path, pinned: str | None = None, comment: str = "") -> str:
    """Return the workspace's public host key (``ssh-ed25519 AAAA...``), generating the pair if absent.

    With ``pinned`` (the configured ``host_key``) the private key must already be there and match it:
    ws cannot make a key for a given public key, and silently replacing it would break the pin.
    """
    private = directory / PRIVATE_NAME
    if not private.exists():
        if pinned:
            raise WsError(
                f"host_key is pinned but there is no private key at {private}; put the matching private key "
                "there (mode 600) or remove host_key from the configuration"
            )
        _generate(directory, comment)
    public = _public_of(private)
    if pinned and _key_body(pinned) != _key_body(public):
        raise WsError(
            f"the pinned host_key does not match the private key in {private} "
            f"(that key's public half is {public}); fix host_key or replace the key file"
        )
    _write(directory / PUBLIC_NAME, (f"{public} {comment}".rstrip() + "\n").encode(), 0o644, replace=True)
    return public


def _generate(directory: Path, comment: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    with contextlib.suppress(FileExistsError):  # a concurrent run made the key first: keep that one
        _write(directory / PRIVATE_NAME, pem, 0o600, replace=False)


def _public_of(private: Path) -> str:
    """The public half of the workspace's private host key, read from the key file itself.

    OpenSSH's private key format carries the public key in clear, so this needs no cryptography import (which
    costs ``ws up`` 20 to 40 ms before the guest can start); the file is checked as cryptography's
    ``load_ssh_private_key`` checks it: unencrypted, one key, equal check bytes, ed25519 with 32 public and 64
    private bytes whose second half is that public key, which the clear one must be.
    """
    try:
        blob = _ed25519_public_blob(private.read_bytes())
    except _NotEd25519:
        raise WsError(f"the SSH host key {private} is not an ed25519 key") from None
    except (OSError, ValueError) as exc:
        raise WsError(f"cannot read the SSH host key {private}: {exc}") from None
    if private.stat().st_mode & 0o077:
        raise WsError(f"the SSH host key {private} is readable by others; sshd refuses it (chmod 600 it)")
    return f"{ED25519} {base64.b64encode(blob).decode()}"


ED25519 = "ssh-ed25519"
_BEGIN, _END = "-----BEGIN OPENSSH PRIVATE KEY-----", "-----END OPENSSH PRIVATE KEY-----"
_MAGIC = b"openssh-key-v1\0"


class _NotEd25519(ValueError):
    pass


def _ed25519_public_blob(data: bytes) -> bytes:
    """The public key blob (``string "ssh-ed25519", string key``) of an OpenSSH ed25519 private key file."""
    text = data.decode("ascii")
    start = text.index(_BEGIN) + len(_BEGIN)
    raw = base64.b64decode("".join(text[start : text.index(_END, start)].split()), validate=True)
    if not raw.startswith(_MAGIC):
        raise ValueError("not an OpenSSH private key")
    outer = _Fields(raw[len(_MAGIC) :])
    cipher, kdf, _kdf_options = outer.string(), outer.string(), outer.string()
    if (cipher, kdf) != (b"none", b"none"):
        raise ValueError("the key is encrypted (sshd needs it without a passphrase)")
    if outer.uint32() != 1:
        raise ValueError("the file holds more than one key")
    blob, inner = outer.string(), _Fields(outer.string())
    if inner.uint32() != inner.uint32():
        raise ValueError("corrupt key (its check bytes differ)")
    if inner.string() != ED25519.encode():
        raise _NotEd25519
    public, secret = inner.string(), inner.string()
    if len(public) != 32 or len(secret) != 64 or secret[32:] != public:
        raise ValueError("corrupt ed25519 key")
    if blob != _ssh_string(ED25519.encode()) + _ssh_string(public):
        raise ValueError("its public key does not match its private key")
    return blob


class _Fields:
    """Reads the SSH wire format's fields (RFC 4251: uint32, length-prefixed string) from the start."""

    def __init__(self, data: bytes):
        self.data = data

    def uint32(self) -> int:
        if len(self.data) < 4:
            raise ValueError("truncated key")
        value, self.data = int.from_bytes(self.data[:4], "big"), self.data[4:]
        return value

    def string(self) -> bytes:
        size = self.uint32()
        if len(self.data) < size:
            raise ValueError("truncated key")
        value, self.data = self.data[:size], self.data[size:]
        return value


def _ssh_string(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


def _key_body(line: str) -> tuple[str, ...]:
    """Type and base64 blob: the comment is not part of a key's identity."""
    return tuple(line.split()[:2])


def _write(path: Path, data: bytes, mode: int, replace: bool) -> None:
    """Create the file with its final mode from the start (never briefly world-readable)."""
    if replace and path.exists() and path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
        return
    import tempfile  # lazily: plugins import ws.api, which must stay light

    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # unpredictable, 0600, O_EXCL
    tmp = Path(name)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    except BaseException:
        tmp.unlink()
        raise
    finally:
        os.close(fd)
    if replace:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)
        finally:
            tmp.unlink()
