"""A WireGuard session with PIA: server list, region and server, token, a local key pair, ``addKey``.

``connect`` is a plain function of settings and paths so that it runs the same from the host namespace and
from inside the VPN network's namespace (part 2). The result is kept in ``session.json`` (0600) for
``ws vpn status`` and for the port-forwarding calls that go through the tunnel.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ws_plugin_pia import regions, serverlist, wgkey
from ws_plugin_pia.auth import Tokens
from ws_plugin_pia.store import read_json, write_json
from ws_plugin_pia.transport import PiaError, Target, json_object

if TYPE_CHECKING:
    from ws_plugin_pia.auth import Token
    from ws_plugin_pia.settings import PiaSettings
    from ws_plugin_pia.store import PiaPaths
    from ws_plugin_pia.transport import PiaHttp

LOGIN_FAILED = "Login failed!"


class LoginFailed(PiaError):
    """addKey said the token is not (or no longer) valid."""


@dataclass(frozen=True)
class Session:
    """What ``addKey`` granted: everything the tunnel and port forwarding need (no secret)."""

    region: str
    server_cn: str
    server_ip: str
    """The WireGuard server's public address (the tunnel's endpoint host)."""
    server_port: int
    server_key: str
    server_vip: str
    """The in-tunnel gateway, where port forwarding is asked for."""
    peer_ip: str
    peer_pubkey: str
    dns_servers: tuple[str, ...]
    public_key: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["dns_servers"] = list(self.dns_servers)
        data["created_at"] = self.created_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        values = {field.name: data[field.name] for field in dataclasses.fields(cls)}
        values["dns_servers"] = tuple(values["dns_servers"])
        values["created_at"] = datetime.fromisoformat(values["created_at"])
        return cls(**values)


def load(paths: PiaPaths) -> Session | None:
    data = read_json(paths.session)
    try:
        return Session.from_json(data) if data else None
    except (KeyError, TypeError, ValueError):
        return None


def connect(
    settings: PiaSettings, paths: PiaPaths, http: PiaHttp, probe: regions.Probe | None = None
) -> tuple[Session, serverlist.ServerList]:
    """A fresh session: one server list, one token (unless a cached one is fresh), one addKey."""
    servers = serverlist.fetch(http, settings)
    probe = probe or regions.tcp_probe(settings.latency_timeout)
    choice = regions.choose(servers, settings.region, settings.port_forward, settings.allow_geo, probe)
    keys = wgkey.new_pair()
    target = Target(choice.server.ip, servers.wg_port, choice.server.cn)
    tokens = Tokens(http, settings, paths)
    try:
        reply = tokens.call(lambda token: add_key(http, target, token, keys.public))
    except LoginFailed:
        reply = add_key(http, target, tokens.renew(), keys.public)
    session = session_from(reply, choice.region.id, choice.server.cn, keys.public)
    keys.store(paths.private_key)
    write_json(paths.session, session.to_json())
    return session, servers


def add_key(http: PiaHttp, target: Target, token: Token, public_key: str) -> dict[str, Any]:
    """``GET https://<wg cn>:1337/addKey?pt=<token>&pubkey=<public key>`` at the server's address."""
    response = http.get_server(target, "/addKey", {"pt": token.value, "pubkey": public_key}, "registering the key")
    return accepted(json_object(response, f"addKey at {target}"), f"addKey at {target}")


def accepted(data: dict[str, Any], where: str) -> dict[str, Any]:
    """addKey's reply when its status is OK; ``Login failed!`` and other refusals raise."""
    if data.get("status") != "OK":
        message = str(data.get("message") or "no message")
        if message == LOGIN_FAILED:
            raise LoginFailed(f"{where}: {message}")
        raise PiaError(f"{where} refused the key: {message}")
    return data


def session_from(reply: dict[str, Any], region: str, cn: str, public_key: str) -> Session:
    """The typed record of an addKey reply; a missing or mistyped field is an error naming it."""

    def field(name: str, kind: type) -> Any:
        value = reply.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise PiaError(f"addKey's reply has no valid {name!r}")
        return value

    values = {name: field(name, kind) for name, kind in (("server_ip", str), ("server_port", int),
              ("server_key", str), ("server_vip", str), ("peer_ip", str), ("peer_pubkey", str))}  # fmt: skip
    dns = field("dns_servers", list)
    if not dns or not all(isinstance(server, str) for server in dns):
        raise PiaError("addKey's reply has no valid 'dns_servers'")
    return Session(
        region=region,
        server_cn=cn,
        **values,
        dns_servers=tuple(dns),
        public_key=public_key,
        created_at=datetime.now(UTC),
    )
