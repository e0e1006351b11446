"""The typed model of ws.toml: what each key means, its default and its own validation.

Cross-field rules that need the loaded plugins (known types, address assignment, interface-name lengths)
live in :mod:`ws.config.resolve`; this module only checks what a key can tell on its own.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ws.sshkeys import looks_public

HOSTNAME_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|[KMGT])?\s*$", re.IGNORECASE)
MEMORY_UNITS_MIB = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
CID_MIN, CID_MAX = 3, 4294967294

FilePath = Annotated[Path, Field(strict=False)]
"""TOML has no path type: paths are strings turned into Path (strict mode would refuse that)."""


class Strict(BaseModel):
    """Base of every section: unknown keys are errors, values are not silently coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def parse_memory_mib(value: str | int) -> int:
    """``"4G"``, ``"4096M"``, ``"4GiB"`` or a plain number of MiB -> MiB."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("memory must be a size like '4G' or a number of MiB")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("memory must be positive")
        return value
    match = MEMORY.match(value)
    if not match:
        raise ValueError(f"cannot parse memory size {value!r}; use for example '4G', '512M' or 4096 (MiB)")
    number, unit = float(match.group(1)), (match.group(2) or "").upper()[:1]
    mib = int(number * MEMORY_UNITS_MIB[unit])
    if mib <= 0:
        raise ValueError(f"memory size {value!r} is less than 1 MiB")
    return mib


class UserConfig(Strict):
    """``[user]``: the login user inside every guest."""

    name: str | None = None
    """Default: the invoking user (``SUDO_USER``), or ``dev`` when that is root."""
    uid: int | None = Field(default=None, ge=1, le=2**31)
    gid: int | None = Field(default=None, ge=1, le=2**31)
    authorized_keys: list[str] | None = None
    authorized_keys_file: FilePath | None = None

    @field_validator("name")
    @classmethod
    def _valid_user_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value):
            raise ValueError(f"{value!r} is not a valid user name (lower case letters, digits, _ and -)")
        if value == "root":
            raise ValueError("the login user must not be root")
        return value

    @field_validator("authorized_keys")
    @classmethod
    def _public_keys_only(cls, value: list[str] | None) -> list[str] | None:
        """ws copies these into every guest: a private key pasted here would be handed to each of them."""
        for index, line in enumerate(value or ()):
            if not looks_public(line):
                raise ValueError(f"entry {index} is not an SSH public key line ('ssh-ed25519 AAAA...')")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> UserConfig:
        if self.authorized_keys is not None and self.authorized_keys_file is not None:
            raise ValueError("set authorized_keys or authorized_keys_file, not both")
        if self.authorized_keys_file is not None and not self.authorized_keys_file.is_absolute():
            raise ValueError("authorized_keys_file must be an absolute path")
        return self


class NetworkConfig(Strict):
    """``[network]``: the sandbox bridge every workspace joins by default."""

    bridge: str = "sandbox-br"
    subnet: ipaddress.IPv4Network = ipaddress.IPv4Network("192.168.83.0/24")
    host_address: ipaddress.IPv4Address | None = None
    """Default: the first address of ``subnet``."""
    upstream: str | None = None
    """Default: the interface of the host's default route, looked up when the network comes up."""
    block_lan: bool = True
    guest_to_guest: bool = False
    """Let workspaces on the bridge reach each other; off: each reaches only the host and the upstream."""
    dns_upstream: list[ipaddress.IPv4Address] | None = None
    """Servers the DNS forwarder asks; default: the host's resolv.conf."""

    @field_validator("subnet", mode="before")
    @classmethod
    def _subnet(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return ipaddress.IPv4Network(value, strict=True)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not an IPv4 network such as 192.168.83.0/24 ({exc})") from None
        return value

    @field_validator("host_address", mode="before")
    @classmethod
    def _address(cls, value: object) -> object:
        return _ipv4(value)

    @field_validator("dns_upstream", mode="before")
    @classmethod
    def _addresses(cls, value: object) -> object:
        return [_ipv4(item) for item in value] if isinstance(value, list) else value

    @field_validator("bridge", "upstream")
    @classmethod
    def _interface_name(cls, value: str | None) -> str | None:
        if value is not None:
            check_interface_name(value)
        return value

    @model_validator(mode="after")
    def _host_in_subnet(self) -> NetworkConfig:
        if self.subnet.prefixlen > 29:
            raise ValueError(f"subnet {self.subnet} is too small; use a /24 or larger")
        if self.host_address is not None and self.host_address not in _usable(self.subnet):
            raise ValueError(f"host_address {self.host_address} is not a usable address of {self.subnet}")
        return self

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The host's address on the bridge: gateway and DNS server of the workspaces."""
        return self.host_address or next(self.subnet.hosts())


class NixConfig(Strict):
    """``[nix]``: binary cache settings handed to guests that use Nix."""

    inherit_host: bool = True
    substituters: list[str] = []
    trusted_public_keys: list[str] = []
    netrc_file: FilePath | None = None

    @field_validator("netrc_file")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError("netrc_file must be an absolute path")
        return value


class AgentConfig(Strict):
    """``[agent]``: coding-agent set-up inside guests."""

    claude_skip_permissions: bool = True
    install_claude_code: bool = False
    """Install Node.js and the Claude Code CLI into ws's image."""


class MountConfig(Strict):
    """One entry of ``mounts``: a host folder shared into the guest."""

    host: FilePath
    guest: str
    read_only: bool = False

    @field_validator("host")
    @classmethod
    def _host_absolute(cls, value: Path) -> Path:
        """Normalised (``/srv/../etc`` is ``/etc``), so every later check sees the folder actually shared."""
        if not value.is_absolute():
            raise ValueError(f"host path {str(value)!r} is relative; mount paths must be absolute")
        normal = Path(os.path.normpath(value))
        if normal == Path("/"):
            raise ValueError("the host's root file system '/' cannot be shared")
        return normal

    @field_validator("guest")
    @classmethod
    def _guest_absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"guest path {value!r} is relative; mount paths must be absolute")
        return value


class WorkspaceConfig(BaseModel):
    """``[workspaces.NAME]``: one workspace. Extra sub-tables named after the backend type carry
    backend-specific options (``[workspaces.dev.incus]``); other unknown keys are errors."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    type: str
    ip: ipaddress.IPv4Address | None = None

    @field_validator("type")
    @classmethod
    def _type_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("type must name a backend, e.g. 'incus' (see ws plugins)")
        return value

    image: str = "debian-bookworm"
    autostart: bool = False
    cpus: Annotated[int, Field(ge=1, le=1024)] | None = None
    memory: str | int | None = None
    host_key: str | None = None
    cid: int | None = None
    network: str = "sandbox"
    mounts: list[MountConfig] = []

    @field_validator("ip", mode="before")
    @classmethod
    def _ip(cls, value: object) -> object:
        return _ipv4(value)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: object) -> object:
        """Before the union is tried, so a bad value gives one error at ``memory``, not one per member."""
        if value is not None:
            parse_memory_mib(value)
        return value

    @field_validator("cid")
    @classmethod
    def _cid(cls, value: int | None) -> int | None:
        if value is not None and not CID_MIN <= value <= CID_MAX:
            raise ValueError(f"cid {value} is outside {CID_MIN}..{CID_MAX}")
        return value

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"ssh-ed25519 [A-Za-z0-9+/]+={0,3}( .*)?", value.strip()):
            raise ValueError("host_key must be an ed25519 public key ('ssh-ed25519 AAAA...')")
        return value

    @property
    def memory_mib(self) -> int | None:
        return None if self.memory is None else parse_memory_mib(self.memory)


class CoreConfig(BaseModel):
    """The whole file minus plugin sections (those are validated by their plugins' models)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    state_dir: FilePath = Path("/var/lib/ws")
    user: UserConfig = UserConfig()
    network: NetworkConfig = NetworkConfig()
    nix: NixConfig = NixConfig()
    agent: AgentConfig = AgentConfig()
    images: ImageConfig = Field(default_factory=lambda: ImageConfig())  # class defined at the end of the file
    workspaces: dict[str, WorkspaceConfig] = {}

    @field_validator("state_dir")
    @classmethod
    def _state_absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("state_dir must be an absolute path")
        return value


def check_interface_name(name: str) -> None:
    """Linux interface names: 1..15 bytes, no '/', ':' or white space."""
    if not name or len(name.encode()) > 15:
        raise ValueError(f"interface name {name!r} is {len(name.encode())} bytes; Linux allows at most 15")
    if re.search(r"[/:\s]", name) or name in (".", ".."):
        raise ValueError(f"{name!r} is not a valid interface name")


def check_workspace_name(name: str) -> None:
    """Workspace names become host names (``workspace-NAME``) and interface names."""
    if not HOSTNAME_LABEL.match(name) or len(f"workspace-{name}") > 63:
        raise ValueError(
            f"{name!r} is not a valid workspace name: use lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )


def _usable(subnet: ipaddress.IPv4Network) -> set[ipaddress.IPv4Address]:
    return set(subnet.hosts())


def _ipv4(value: object) -> object:
    if isinstance(value, str):
        try:
            return ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 address") from None
    return value


class ImageConfig(Strict):
    """``[images]``: what goes into ws's own root file system images besides the base set."""

    packages: list[str] = []
    """Extra Debian packages; a change rebuilds the image (they are part of its content hash)."""
    sources: FilePath | None = None
    """A deb822 apt sources file to build from instead of the host's (needed on hosts that are not Debian)."""

    @field_validator("packages")
    @classmethod
    def _package_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name):
                raise ValueError(f"{name!r} is not a Debian package name")
        return value

    @field_validator("sources")
    @classmethod
    def _sources_absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError("sources must be an absolute path")
        return value
