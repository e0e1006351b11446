"""Turning what Incus and the transport say into one sentence a user can act on.

Every failure a user is likely to meet (daemon down, socket permissions, untrusted certificate, missing
image, missing bridge, a foreign instance in the way) gets a message that says what to do; anything else
keeps Incus' own error text, which is usually clear, prefixed with what ws was doing.
"""

from __future__ import annotations

from ws.errors import WsError


class IncusError(WsError):
    """An Incus API request failed; ``status`` is the HTTP status (0 when the server was not reached)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class NotFound(IncusError):
    """The object asked for does not exist (HTTP 404)."""


def connection_error(endpoint: str, exc: BaseException, remote: bool) -> IncusError:
    """The server could not be reached at all."""
    text = str(exc)
    if remote:
        if "certificate" in text.lower() or "ssl" in text.lower() or "fingerprint" in text.lower():
            return IncusError(
                f"cannot verify the Incus server at {endpoint}: its certificate does not match server_cert "
                f"({_short(text)})"
            )
        return IncusError(f"cannot reach the Incus server at {endpoint}: {_short(text)}")
    if isinstance(exc, PermissionError) or "Permission denied" in text:
        return IncusError(
            f"permission denied on Incus' socket {endpoint}: run ws as root, or add your user to the "
            "incus-admin group (sudo adduser $USER incus-admin, then log in again)"
        )
    if isinstance(exc, FileNotFoundError) or "No such file" in text or "Connection refused" in text:
        return IncusError(
            f"incusd is not running (no answer on {endpoint}): start it with `systemctl start incus`, or "
            "on hosts without systemd with scripts/start-incusd; install it with scripts/install-incus"
        )
    return IncusError(f"cannot talk to incusd on {endpoint}: {_short(text)}")


def missing_certificate(key: str, path: object, endpoint: str) -> IncusError:
    return IncusError(f"[incus] {key} {path} does not exist (needed to reach {endpoint})")


def untrusted_client(endpoint: str, client_cert: object) -> IncusError:
    return IncusError(
        f"the Incus server at {endpoint} does not trust ws's client certificate {client_cert}: "
        "add it on the server with `incus config trust add-certificate CERT` (see docs/backends/incus.md)"
    )


def api_error(doing: str, status: int, message: str, project: str | None = None) -> IncusError:
    """An error answer of the API, while ``doing`` something (``"creating workspace-dev"``) in ``project``."""
    lower = message.lower()
    if "project not found" in lower:  # not the object asked for: the whole project is missing
        return IncusError(
            f"{doing}: the Incus project {project!r} ([incus] project) does not exist; create it with "
            f"`incus project create {project}` and give its default profile a root disk (docs/backends/incus.md)",
            status,
        )
    if status == 404:
        return NotFound(f"{doing}: {message}", status)
    if status == 403:
        return IncusError(
            f"{doing}: Incus refused the request ({message}); the client certificate is not trusted by the "
            "server or not allowed in this project (incus config trust add-certificate on the server)",
            status,
        )
    if (
        "failed to load network" in lower
        or ("parent" in lower and "not found" in lower)
        or ("nic" in lower and "no such" in lower)
    ):
        return IncusError(f"{doing}: the bridge is missing ({message}); run `ws network up` first", status)
    if "storage pool" in lower and ("not found" in lower or "no root" in lower):
        return IncusError(
            f"{doing}: {message}; Incus has no storage pool for the root disk: create one "
            "(incus storage create default dir) or run scripts/start-incusd, which sets it up",
            status,
        )
    if "no root device" in lower or "root disk" in lower:
        return IncusError(
            f"{doing}: {message}; add a root disk to the default profile "
            "(incus profile device add default root disk path=/ pool=default) or set [incus] storage_pool",
            status,
        )
    if "image not found" in lower or "couldn't find the requested image" in lower:
        return NotFound(f"{doing}: the image is not on the server ({message})", status)
    return IncusError(f"{doing}: {message}", status)


def foreign_instance(name: str, endpoint: str) -> WsError:
    return WsError(
        f"an instance named {name} exists on {endpoint} but ws did not create it (it lacks ws's "
        "user.ws.workspace key); ws never deletes instances it does not own: rename or remove it "
        f"yourself (incus rename {name} NEW-NAME), or rename the workspace"
    )


def _short(text: str) -> str:
    return text if len(text) <= 300 else text[:297] + "..."
