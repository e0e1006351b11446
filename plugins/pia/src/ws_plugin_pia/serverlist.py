"""PIA's server list (``/vpninfo/servers/v6``): fetch, verify its signature, parse into typed records.

The reply is one JSON line, a blank line, then a base64 RSA-SHA256 signature of that JSON line. A reply
shorter than about 1000 bytes is PIA's way of failing; anything malformed is refused with a sentence.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ws_plugin_pia.transport import PiaError

if TYPE_CHECKING:
    from ws_plugin_pia.settings import PiaSettings
    from ws_plugin_pia.transport import PiaHttp

MIN_LENGTH = 1000


@dataclass(frozen=True)
class Server:
    ip: str
    cn: str


@dataclass(frozen=True)
class Region:
    id: str
    name: str
    country: str
    dns: str
    port_forward: bool
    geo: bool
    offline: bool
    meta: tuple[Server, ...]
    wg: tuple[Server, ...]


@dataclass(frozen=True)
class ServerList:
    regions: tuple[Region, ...]
    wg_port: int
    """The WireGuard API port (``groups.wg[0].ports[0]``, 1337 at PIA)."""
    signed: bool
    """The signature was checked against the configured public key."""

    def region(self, region_id: str) -> Region:
        for region in self.regions:
            if region.id == region_id:
                return region
        known = ", ".join(sorted(r.id for r in self.regions))
        raise PiaError(f"PIA's server list has no region {region_id!r} (pia.region; known: {known})")


def fetch(http: PiaHttp, settings: PiaSettings) -> ServerList:
    response = http.get_url(settings.serverlist_url, "fetching the server list")
    public_key = settings.serverlist_pubkey_file.read_bytes() if settings.serverlist_pubkey_file else None
    return parse(response.content, public_key)


def parse(body: bytes, public_key_pem: bytes | None = None) -> ServerList:
    """The server list from a reply; with a key, the signature must verify or the list is refused."""
    if len(body) < MIN_LENGTH:
        raise PiaError(f"PIA's server list reply is only {len(body)} bytes: the server list request failed")
    json_line, _, rest = body.partition(b"\n")
    if public_key_pem is not None:
        verify_signature(json_line, rest.strip(), public_key_pem)
    try:
        data = json.loads(json_line)
    except ValueError as exc:
        raise PiaError(f"PIA's server list is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PiaError("PIA's server list is not a JSON object")
    return ServerList(_regions(data), _wg_port(data), public_key_pem is not None)


def verify_signature(signed: bytes, signature_b64: bytes, public_key_pem: bytes) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except ValueError as exc:
        raise PiaError(f"pia.serverlist_pubkey_file is not a PEM public key ({exc})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise PiaError("pia.serverlist_pubkey_file is not an RSA public key")
    try:
        signature = base64.b64decode(b"".join(signature_b64.split()), validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    if not signature:
        raise PiaError("PIA's server list carries no readable signature; refused (pia.serverlist_pubkey_file is set)")
    try:
        key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise PiaError("PIA's server list signature does not verify with pia.serverlist_pubkey_file; refused") from None


def _wg_port(data: dict[str, Any]) -> int:
    try:
        port = data["groups"]["wg"][0]["ports"][0]
    except (KeyError, IndexError, TypeError):
        raise PiaError("PIA's server list has no WireGuard port (groups.wg[0].ports[0])") from None
    if not isinstance(port, int) or not 0 < port < 65536:
        raise PiaError(f"PIA's server list gives an invalid WireGuard port {port!r}")
    return port


def _regions(data: dict[str, Any]) -> tuple[Region, ...]:
    raw = data.get("regions")
    if not isinstance(raw, list) or not raw:
        raise PiaError("PIA's server list has no regions")
    return tuple(_region(index, item) for index, item in enumerate(raw))


def _region(index: int, item: Any) -> Region:
    if not isinstance(item, dict):
        raise PiaError(f"PIA's server list: regions[{index}] is not an object")
    where = f"regions[{index}]" + (f" ({item['id']})" if isinstance(item.get("id"), str) else "")

    def text(key: str, default: str | None = None) -> str:
        value = item.get(key, default)
        if not isinstance(value, str):
            raise PiaError(f"PIA's server list: {where}.{key} is missing or not a string")
        return value

    def flag(key: str) -> bool:
        value = item.get(key, False)
        if not isinstance(value, bool):
            raise PiaError(f"PIA's server list: {where}.{key} is not true or false")
        return value

    servers = item.get("servers")
    if not isinstance(servers, dict):
        raise PiaError(f"PIA's server list: {where}.servers is missing")
    return Region(
        id=text("id"),
        name=text("name"),
        country=text("country", ""),
        dns=text("dns", ""),
        port_forward=flag("port_forward"),
        geo=flag("geo"),
        offline=flag("offline"),
        meta=_servers(servers, "meta", where),
        wg=_servers(servers, "wg", where),
    )


def _servers(servers: dict[str, Any], group: str, where: str) -> tuple[Server, ...]:
    raw = servers.get(group, [])
    if not isinstance(raw, list):
        raise PiaError(f"PIA's server list: {where}.servers.{group} is not a list")
    result = []
    for number, entry in enumerate(raw):
        if not (isinstance(entry, dict) and isinstance(entry.get("ip"), str) and isinstance(entry.get("cn"), str)):
            raise PiaError(f"PIA's server list: {where}.servers.{group}[{number}] needs ip and cn")
        result.append(Server(entry["ip"], entry["cn"]))
    return tuple(result)
