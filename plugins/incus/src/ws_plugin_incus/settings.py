"""``[incus]`` and ``[workspaces.NAME.incus]``: which Incus server to use and how.

The host-wide section sets the defaults; a workspace's own ``incus`` table overrides any key, so one
workspace can run on a remote cluster while the others stay on the local daemon. Imported only by the
hooks (pydantic is heavy), never at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ws_plugin_incus.listing import local_socket

WELL_KNOWN_REMOTES = {"images": ("https://images.linuxcontainers.org", "simplestreams")}
"""Image servers the ``incus`` CLI knows by default, so ``image = "images:debian/12"`` works unconfigured."""

FilePath = Annotated[Path, Field(strict=False)]


class Remote(BaseModel):
    """An image server for ``image = "NAME:ALIAS"`` references."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    protocol: str = "simplestreams"


class IncusSettings(BaseModel):
    """Connection and instance settings; every key may be overridden per workspace."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    socket: FilePath | None = None
    """The local unix socket (default: the first of /var/lib/incus/unix.socket, /run/incus/unix.socket)."""
    url: str | None = None
    """A remote Incus server or cluster, ``https://HOST:8443``; then the next three keys apply."""
    client_cert: FilePath | None = None
    client_key: FilePath | None = None
    server_cert: FilePath | None = None
    """The server's certificate (pinned; for a cluster, the cluster certificate)."""
    target: str | None = None
    """Cluster member to create instances on (default: the cluster's placement)."""
    project: str | None = None
    """Incus project (default: ``default``)."""
    storage_pool: str | None = None
    """Root disk pool (default: the one in the ``default`` profile)."""
    shift: bool | None = None
    """Idmapped mounts for shared folders (``shift=true``); default: when the server's kernel supports them."""
    standby: bool = True
    """Make the next instance ahead of time (stopped, never started) so re-creation skips the image unpack."""
    ready_timeout: float = Field(default=120.0, gt=0)
    """Seconds ``ws up`` waits for systemd's default target and sshd."""
    remotes: dict[str, Remote] = {}
    shared_paths: bool = False
    """A remote server sees this host's folders at the same paths (it is this machine, or both mount the
    same shared file system). Disk sources are read on the server: without this, ws refuses to send it
    host paths, which there would name *that* machine's folders."""

    @field_validator("url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError(f"url {value!r} must start with https:// (Incus' remote API is HTTPS only)")
        return value.rstrip("/") if value else value

    @field_validator("socket", "client_cert", "client_key", "server_cert")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value

    @model_validator(mode="after")
    def _remote_needs_certificates(self) -> IncusSettings:
        if self.url is None:
            return self
        if self.socket is not None:
            raise ValueError("set either socket (local daemon) or url (remote server), not both")
        missing = [k for k in ("client_cert", "client_key", "server_cert") if getattr(self, k) is None]
        if missing:
            raise ValueError(f"a remote url needs {', '.join(missing)} (see docs/backends/incus.md)")
        if not self.shared_paths:
            raise ValueError(
                "a remote server reads shared folders (the work folder, mounts) at their paths on its own "
                "machine; set shared_paths = true only if it sees this host's folders there (same machine or "
                "a shared file system)"
            )
        return self

    @property
    def remote(self) -> bool:
        return self.url is not None

    def endpoint(self) -> str:
        """What the connection is to, for messages and cache keys."""
        return self.url or str(self.local_socket())

    def local_socket(self) -> Path:
        return Path(local_socket(None if self.socket is None else str(self.socket)))

    def image_remote(self, name: str) -> tuple[str, str] | None:
        """(url, protocol) of an image server name, or None when unknown."""
        if name in self.remotes:
            return self.remotes[name].url, self.remotes[name].protocol
        return WELL_KNOWN_REMOTES.get(name)
