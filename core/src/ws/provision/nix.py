"""Binary caches for guests that use Nix, inherited from the host's settings.

Only cache addresses and public keys are copied. A netrc holds credentials, so it reaches guests only when
``[nix] netrc_file`` names it (never the host's own netrc by default); backends mount it read-only at
:data:`GUEST_NETRC` and its contents are never read by ws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ws.errors import WsError
from ws.types import Mount, ProvisionFile

HOST_NIX_CONF = Path("/etc/nix/nix.conf")
GUEST_NIX_CONF = "/etc/nix/nix.conf"
GUEST_NETRC = "/etc/nix/netrc"
MAX_INCLUDE_DEPTH = 8


@dataclass(frozen=True)
class NixSettings:
    substituters: tuple[str, ...]
    trusted_public_keys: tuple[str, ...]
    netrc: Path | None


def nix_settings(nix_config, host_nix_conf: Path = HOST_NIX_CONF) -> NixSettings | None:
    """``[nix]`` lists plus (with ``inherit_host``) the host's; None when there is nothing to hand on."""
    substituters = list(nix_config.substituters)
    keys = list(nix_config.trusted_public_keys)
    netrc = nix_config.netrc_file
    if netrc is not None and not Path(netrc).is_file():
        raise WsError(f"[nix] netrc_file {netrc} does not exist")
    found_host = nix_config.inherit_host and host_nix_conf.is_file()
    if found_host:
        host = _read_conf(host_nix_conf)
        substituters += host.get("substituters", []) + host.get("extra-substituters", [])
        keys += host.get("trusted-public-keys", []) + host.get("extra-trusted-public-keys", [])
    if not (found_host or substituters or keys or netrc):
        return None
    return NixSettings(tuple(dict.fromkeys(substituters)), tuple(dict.fromkeys(keys)), netrc)


def nix_files(settings: NixSettings) -> list[ProvisionFile]:
    lines = ["# Written by ws: binary caches inherited from the host's Nix settings."]
    if settings.substituters:
        lines.append("substituters = " + " ".join(settings.substituters))
    if settings.trusted_public_keys:
        lines.append("trusted-public-keys = " + " ".join(settings.trusted_public_keys))
    lines.append("fallback = true")
    if settings.netrc is not None:
        lines.append(f"netrc-file = {GUEST_NETRC}")
    return [ProvisionFile(GUEST_NIX_CONF, ("\n".join(lines) + "\n").encode())]


def nix_mounts(settings: NixSettings) -> list[Mount]:
    """The host's netrc, read-only: never copied into an image or instance."""
    return [] if settings.netrc is None else [Mount(settings.netrc, GUEST_NETRC, read_only=True)]


def _read_conf(path: Path, depth: int = 0) -> dict[str, list[str]]:
    """nix.conf: ``name = value`` lines, later ones override, ``extra-`` ones append; ``include`` files."""
    settings: dict[str, list[str]] = {}
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise WsError(f"cannot read the host's Nix settings {path}: {exc}") from None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        words = line.split()
        if len(words) == 2 and words[0] in ("include", "!include"):
            included = path.parent / words[1]
            if depth < MAX_INCLUDE_DEPTH and (words[0] == "include" or included.is_file()):
                for name, values in _read_conf(included, depth + 1).items():
                    _assign(settings, name, values)
            continue
        name, sep, value = line.partition("=")
        if sep:
            _assign(settings, name.strip(), value.split())
    return settings


def _assign(settings: dict[str, list[str]], name: str, values: list[str]) -> None:
    if name.startswith("extra-"):
        settings[name] = settings.get(name, []) + values
    else:
        settings[name] = values
