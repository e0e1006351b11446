"""The workspace's SSH host key: generated once on the host, kept across re-creation.

The key lives in the workspace's host folder, which backends mount read-only at ``/etc/ssh-host-keys``.
Keeping it on the host is what lets ``known_hosts`` pin it: a re-created guest presents the same key.
"""

from __future__ import annotations

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
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_ssh_private_key(private.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise WsError(f"cannot read the SSH host key {private}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise WsError(f"the SSH host key {private} is not an ed25519 key")
    if private.stat().st_mode & 0o077:
        raise WsError(f"the SSH host key {private} is readable by others; sshd refuses it (chmod 600 it)")
    raw = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode()


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
