"""What ``ws vpn status`` shows, from the stored state only (no call to PIA): region, server, public key,
peer address, token age, forwarded port. Secrets (token, private key, payload, signature) never appear."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ws_plugin_pia import auth, portforward, session, wgkey

if TYPE_CHECKING:
    from ws_plugin_pia.settings import PiaSettings
    from ws_plugin_pia.store import PiaPaths


def report(settings: PiaSettings, paths: PiaPaths) -> dict[str, Any]:
    now = datetime.now(UTC)
    current = session.load(paths)
    token = auth.cached(paths)
    forward = portforward.load(paths)
    return {
        "region": current.region if current else None,
        "server": current.server_cn if current else None,
        "server_ip": current.server_ip if current else None,
        "server_port": current.server_port if current else None,
        "public_key": wgkey.public_key(paths.private_key),
        "peer_ip": current.peer_ip if current else None,
        "dns_servers": list(current.dns_servers) if current else [],
        "session_age_seconds": int((now - current.created_at).total_seconds()) if current else None,
        "token": "***" if token else None,
        "token_age_seconds": int((now - token.obtained_at).total_seconds()) if token else None,
        "port_forward": settings.port_forward,
        "forwarded_port": portforward.current_port(paths),
        "port_expires_at": forward.expires_at.isoformat() if forward else None,
        "port_bound_at": forward.bound_at.isoformat() if forward and forward.bound_at else None,
        "tunnel": _tunnel(paths),
    }


def age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def _tunnel(paths: PiaPaths) -> dict[str, Any] | None:
    """The agent's last report: state, handshake age, last error (None before the agent ever ran)."""
    from ws_plugin_pia.store import read_json

    return read_json(paths.agent)
