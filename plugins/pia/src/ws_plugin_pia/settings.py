"""``[pia]``: the PIA account, where PIA's API is, what to trust and which region to use.

The password lives only in ``password_file`` (a root-owned regular file of mode 0600): never in the TOML,
argv, the environment of child processes, logs, URLs or any other file. The section is optional: an empty
``[pia]`` (or none) means the VPN is not configured, and the commands that need it say so. Imported only
by the hooks (pydantic is heavy), never at start-up.
"""

from __future__ import annotations

import os
import re
import stat
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from ws.errors import WsError

if TYPE_CHECKING:
    from ws.context import Context

SERVERLIST_URL = "https://serverlist.piaservers.net/vpninfo/servers/v6"
TOKEN_URL = "https://www.privateinternetaccess.com/api/client/v2/token"
REQUIRED_KEYS = ("username", "password_file", "ca_file")

FilePath = Annotated[Path, Field(strict=False)]
Address = Annotated[IPv4Address, Field(strict=False)]
Subnet = Annotated[IPv4Network, Field(strict=False)]
INTERFACE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


class ForwardTarget(BaseModel):
    """``[pia.receive_forwarded_port]``: the one service workspace PIA's forwarded port is DNATed to."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    workspace: str
    """A workspace on the VPN network."""
    protocol: Literal["tcp", "udp", "both"] = "both"
    port: int | None = Field(default=None, ge=1, le=65535)
    """The port the workspace listens on; unset: the same number PIA forwards."""


class PiaSettings(BaseModel):
    """The ``[pia]`` section (docs/vpn.md lists every key)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    username: str | None = None
    password_file: FilePath | None = None
    """Root-owned regular file of mode 0600 holding the password (one line)."""
    region: str = "auto"
    """A region id from ``ws vpn regions`` (``swiss``), or ``auto``: the eligible region answering fastest."""
    port_forward: bool = False
    """Ask PIA for a forwarded port; ``auto`` then only considers regions that offer it."""
    allow_geo: bool = False
    """Let ``auto`` choose geo-located regions (servers not physically in the country they name)."""
    ca_file: FilePath | None = None
    """PIA's root CA (ca.rsa.4096.crt): the only certificate authority trusted for PIA's API."""
    serverlist_pubkey_file: FilePath | None = None
    """PIA's region-list public key (PEM); when set, a server list whose signature fails is refused."""
    serverlist_url: str = SERVERLIST_URL
    token_url: str = TOKEN_URL
    hosts: dict[str, Address] = {}
    """Host names of the two URLs resolved to these addresses instead of DNS (like curl's --resolve)."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to establish a TCP+TLS connection to any PIA API server."""
    request_timeout: float = Field(default=20.0, gt=0)
    """Seconds to wait for an answer once connected."""
    latency_timeout: float = Field(default=0.05, gt=0)
    """Seconds a meta server may take to accept a TCP connection on 443 when ``region = "auto"``
    (PIA's own scripts allow 50 ms); slower regions are not candidates."""
    bind_retries: int = Field(default=3, ge=0)
    """How often a timed-out ``bindPort`` is retried (with doubling back-off) before the attempt fails."""

    # --- the VPN network (part 2) ---
    bridge: str = "br-vpn"
    subnet: Subnet = IPv4Network("10.100.0.0/24")
    host_address: Address = IPv4Address("10.100.0.1")
    """The host's address on the bridge (ssh and ``ws exec`` reach service workspaces from here)."""
    endpoint_address: Address = IPv4Address("10.100.0.2")
    """The VPN endpoint namespace's address: the service workspaces' gateway and DNS server."""
    namespace: str = "ws-vpn"
    """The network namespace of the VPN endpoint (``/run/netns/NAME``)."""
    interface: str = "piaw"
    """The WireGuard interface (created in the host namespace, moved into ``namespace``)."""
    mtu: int = Field(default=1420, ge=1280, le=1500)
    receive_forwarded_port: ForwardTarget | None = None
    on_port_forwarded: list[str] | None = None
    """A command (argv) run on the host with ``PORT`` and ``TARGET_IP`` set when the port is first bound or
    changes."""
    renew_days: float = Field(default=30.0, gt=0)
    """A new session (token, key, server) this often; PIA's sessions and port signatures last about two
    months."""
    handshake_timeout: float = Field(default=180.0, gt=0)
    """A WireGuard handshake older than this ..."""
    health_failures: int = Field(default=3, ge=1)
    """... on this many consecutive checks makes the agent reconnect."""
    health_interval: float = Field(default=60.0, gt=0)
    """Seconds between the agent's checks (handshake, port binding, renewal due)."""
    verify_url: str = "https://ipinfo.io/ip"
    """``ws vpn verify`` fetches this through the tunnel and from the host: it answers the caller's public
    address, which must differ."""
    wait_for_name: str = "www.privateinternetaccess.com"
    """Service workspaces start their sshd once this name resolves through the tunnel."""

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("password_file")
    @classmethod
    def _password_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            check_password_file(value)
        return value

    @field_validator("ca_file", "serverlist_pubkey_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return value
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        if not value.is_file():
            raise ValueError(f"{value} is not a regular file")
        if not os.access(value, os.R_OK):
            raise ValueError(f"{value} is not readable")
        return value

    @field_validator("serverlist_url", "token_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(f"{value!r} must start with https:// (PIA's API is only used over verified TLS)")
        return value

    @field_validator("bridge", "namespace", "interface")
    @classmethod
    def _interface_name(cls, value: str) -> str:
        if not INTERFACE_NAME.match(value):
            raise ValueError(f"{value!r} is not a usable interface name (1-15 of letters, digits, '_.-')")
        return value

    @model_validator(mode="after")
    def _addresses(self) -> PiaSettings:
        usable = set(self.subnet.hosts())
        for key in ("host_address", "endpoint_address"):
            if getattr(self, key) not in usable:
                raise ValueError(f"{key} {getattr(self, key)} is not a host address of subnet {self.subnet}")
        if self.host_address == self.endpoint_address:
            raise ValueError("host_address and endpoint_address must differ")
        if self.receive_forwarded_port is not None and not self.port_forward:
            raise ValueError("receive_forwarded_port needs port_forward = true")
        return self

    @model_validator(mode="after")
    def _complete(self) -> PiaSettings:
        given = [key for key in REQUIRED_KEYS if getattr(self, key) is not None]
        if given and len(given) != len(REQUIRED_KEYS):
            missing = ", ".join(key for key in REQUIRED_KEYS if getattr(self, key) is None)
            raise ValueError(f"a configured [pia] also needs {missing}")
        return self

    @property
    def configured(self) -> bool:
        """False for an empty section: the VPN is not in use."""
        return self.username is not None

    def read_password(self) -> str:
        """The password, read when needed and never kept beyond the request that uses it."""
        if self.password_file is None:
            raise WsError("[pia] is not configured (set username, password_file and ca_file)")
        try:
            check_password_file(self.password_file)
        except ValueError as exc:
            raise WsError(f"pia.password_file: {exc}") from None
        password = self.password_file.read_text().strip()
        if not password:
            raise WsError(f"pia.password_file: {self.password_file} is empty")
        return password


def check_password_file(path: Path) -> None:
    """A regular file, mode 0600, owned by root: anything looser could leak the password."""
    if not path.is_absolute():
        raise ValueError("must be an absolute path")
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist") from None
    except PermissionError:
        raise ValueError(f"{path} cannot be read (ws reads it as root)") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode != 0o600:
        raise ValueError(f"{path} has mode {mode:04o}; it must be 0600 (chmod 600 {path})")
    if info.st_uid != 0:
        raise ValueError(f"{path} is owned by uid {info.st_uid}; it must be owned by root (chown root {path})")


def settings_of(ctx: Context) -> PiaSettings:
    """The validated ``[pia]`` section, or a sentence saying it is not configured."""
    settings = ctx.config.sections.get("pia") or PiaSettings()
    if not settings.configured:
        raise WsError(f"[pia] is not configured in {ctx.config.source} (see docs/vpn.md)")
    return settings
