"""Keeping the PIA session fresh: a new session (token, key, addKey) when there is none, when it is a month
old (PIA's sessions and port signatures last about two months) or when forced; then, with port forwarding,
the signature kept valid and the port bound again.

``renew`` is what the network maintain hook of contract v2 will call (part 2 schedules it every
``BIND_INTERVAL``); until that hook exists, ``ws vpn renew`` calls it directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ws.locking import file_lock

from ws_plugin_pia import portforward, session
from ws_plugin_pia.auth import Tokens
from ws_plugin_pia.transport import PiaHttp

if TYPE_CHECKING:
    from ws_plugin_pia.regions import Probe
    from ws_plugin_pia.settings import PiaSettings
    from ws_plugin_pia.store import PiaPaths


@dataclass(frozen=True)
class Renewal:
    """Shaped like contract v2's MaintenanceResult."""

    action: str
    """``renewed`` (a new session) or ``unchanged`` (the session was kept; the port may have been bound)."""
    detail: str
    next_due: datetime


def renew(
    settings: PiaSettings,
    paths: PiaPaths,
    force: bool = False,
    *,
    probe: Probe | None = None,
    port_forward_port: int = portforward.API_PORT,
    backoff: float = 1.0,
    activate: Callable[[session.Session], Any] | None = None,
    in_tunnel: Callable[[Callable[[], Any]], Any] | None = None,
) -> Renewal:
    """``activate(session)`` puts the (new or kept) session into service before the port-forwarding calls,
    which ``in_tunnel(call)`` makes from inside the VPN namespace (PIA answers them only through the tunnel)."""
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    # One renewal at a time per state: two concurrent ones would register two keys, and PIA may expire the
    # first key registered with a token when a second one is.
    with file_lock(paths.root / "renew.lock"), PiaHttp.from_settings(settings) as http:
        now = datetime.now(UTC)
        current = session.load(paths)
        lifetime = timedelta(days=settings.renew_days)
        renewed = force or current is None or now - current.created_at >= lifetime
        renewed = renewed or settings.region not in ("auto", current.region)  # the configuration changed
        if renewed or current is None:
            current, _ = session.connect(settings, paths, http, probe)
        if activate is not None:
            activate(current)
        next_due = current.created_at + lifetime
        detail = f"region {current.region}, server {current.server_cn} ({current.server_ip}), peer {current.peer_ip}"
        if settings.port_forward:
            tokens = Tokens(http, settings, paths)
            state = (in_tunnel or _here)(
                lambda: portforward.maintain(
                    http, current, tokens, paths, settings.bind_retries, backoff, port_forward_port
                )
            )
            detail += f", port {state.port} forwarded until {state.expires_at:%Y-%m-%d %H:%M} UTC"
            next_due = min(next_due, now + portforward.BIND_INTERVAL)
    return Renewal("renewed" if renewed else "unchanged", detail, next_due)


def _here(call: Callable[[], Any]) -> Any:
    return call()
