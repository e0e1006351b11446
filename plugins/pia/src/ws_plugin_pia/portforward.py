"""Port forwarding: a signature from ``getSignature``, kept across restarts, and ``bindPort`` every 15 min.

Both calls go to the WireGuard server's in-tunnel address (``server_vip``) on port 19999 with TLS verified
against the WireGuard server's ``cn``; part 2 makes them from inside the VPN namespace. The signed payload
decodes to ``{"token", "port", "expires_at"}``; a new signature is fetched when fewer than 7 days remain,
when ``bindPort`` refuses the signature, or on HTTP 409 (port busy). There is no call to release a port.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ws_plugin_pia.store import read_json, write_json
from ws_plugin_pia.transport import PiaError, PiaHttpStatus, PiaTimeout, Target, json_object

if TYPE_CHECKING:
    from ws_plugin_pia.auth import Token, Tokens
    from ws_plugin_pia.session import Session
    from ws_plugin_pia.store import PiaPaths
    from ws_plugin_pia.transport import PiaHttp

API_PORT = 19999
REFRESH_BEFORE = timedelta(days=7)
BIND_INTERVAL = timedelta(minutes=15)
"""PIA drops a port that is not bound again within this interval."""


@dataclass(frozen=True)
class PortForward:
    """The persisted signature and what it grants."""

    payload: str
    signature: str
    port: int
    expires_at: datetime
    server_cn: str
    bound_at: datetime | None = None

    def needs_new_signature(self, server_cn: str, now: datetime) -> bool:
        return server_cn != self.server_cn or self.expires_at - now < REFRESH_BEFORE

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": self.payload,
            "signature": self.signature,
            "port": self.port,
            "expires_at": self.expires_at.isoformat(),
            "server_cn": self.server_cn,
            "bound_at": self.bound_at.isoformat() if self.bound_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PortForward:
        bound = data.get("bound_at")
        return cls(
            payload=str(data["payload"]),
            signature=str(data["signature"]),
            port=int(data["port"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
            server_cn=str(data["server_cn"]),
            bound_at=datetime.fromisoformat(bound) if bound else None,
        )


def load(paths: PiaPaths) -> PortForward | None:
    data = read_json(paths.port_forward)
    try:
        return PortForward.from_json(data) if data else None
    except (KeyError, TypeError, ValueError):
        return None


def current_port(paths: PiaPaths) -> int | None:
    """The forwarded port while its signature is valid (what part 2 DNATs and hands to the hook)."""
    state = load(paths)
    return state.port if state and state.expires_at > datetime.now(UTC) else None


def decode_payload(payload: str) -> tuple[int, datetime]:
    """(port, expiry) from getSignature's base64 payload; anything else is an error with a sentence."""
    try:
        data = json.loads(base64.b64decode(payload, validate=True))
        port, expires = data["port"], datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00"))
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise PiaError("getSignature's payload does not decode to a port and an expiry") from None
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise PiaError(f"getSignature's payload names an invalid port {port!r}")
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return port, expires


def get_signature(http: PiaHttp, target: Target, token: Token) -> PortForward:
    response = http.get_server(target, "/getSignature", {"token": token.value}, "asking for a forwarded port")
    return signature_from(json_object(response, f"getSignature at {target}"), target)


def signature_from(data: dict[str, Any], target: Target) -> PortForward:
    """The typed state of a getSignature reply; a refusal or a missing field is an error with a sentence."""
    if data.get("status") != "OK":
        raise PiaError(f"getSignature at {target} refused: {data.get('message') or 'no message'}")
    payload, signature = data.get("payload"), data.get("signature")
    if not isinstance(payload, str) or not isinstance(signature, str) or not signature:
        raise PiaError("getSignature's reply lacks the payload or the signature")
    port, expires = decode_payload(payload)
    return PortForward(payload, signature, port, expires, target.name)


class SignatureRefused(PiaError):
    """bindPort refused the signature (bad, expired) or the port (HTTP 409): a new signature is needed."""


def bind_port(http: PiaHttp, target: Target, state: PortForward) -> None:
    params = {"payload": state.payload, "signature": state.signature}
    try:
        response = http.get_server(target, "/bindPort", params, "binding the forwarded port")
    except PiaHttpStatus as exc:
        if exc.status == 409:
            raise SignatureRefused(f"bindPort at {target}: port {state.port} is busy (HTTP 409)") from None
        raise
    data = json_object(response, f"bindPort at {target}")
    if data.get("status") != "OK":
        raise SignatureRefused(f"bindPort at {target} refused the signature: {data.get('message') or 'no message'}")


def maintain(
    http: PiaHttp,
    session: Session,
    tokens: Tokens,
    paths: PiaPaths,
    retries: int = 3,
    backoff: float = 1.0,
    port: int = API_PORT,
    sleep: Callable[[float], None] = time.sleep,
) -> PortForward:
    """Keep the port forwarded: reuse the stored signature when it is good, bind, refresh when refused.

    ``bindPort`` timeouts are retried ``retries`` times, waiting ``backoff`` seconds and doubling.
    """
    target = Target(session.server_vip, port, session.server_cn)
    state = load(paths)
    if state is None or state.needs_new_signature(session.server_cn, datetime.now(UTC)):
        state = _new_signature(http, target, tokens, paths)
    try:
        _bind_with_backoff(http, target, state, retries, backoff, sleep)
    except SignatureRefused:
        state = _new_signature(http, target, tokens, paths)
        _bind_with_backoff(http, target, state, retries, backoff, sleep)
    state = dataclasses.replace(state, bound_at=datetime.now(UTC))
    write_json(paths.port_forward, state.to_json())
    return state


def _new_signature(http: PiaHttp, target: Target, tokens: Tokens, paths: PiaPaths) -> PortForward:
    state = tokens.call(lambda token: get_signature(http, target, token))
    write_json(paths.port_forward, state.to_json())
    return state


def _bind_with_backoff(
    http: PiaHttp, target: Target, state: PortForward, retries: int, backoff: float, sleep: Callable[[float], None]
) -> None:
    delay = backoff
    for attempt in range(retries + 1):
        try:
            bind_port(http, target, state)
            return
        except PiaTimeout:
            if attempt == retries:
                raise
        sleep(delay)
        delay *= 2
