"""PIA's API token: ``POST .../api/client/v2/token`` with the username and password as form fields (never
the legacy basic-auth ``generateToken``, never in a URL), cached in a 0600 file until shortly before it
expires and fetched again when an API call answers 401."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from ws_plugin_pia.store import read_json, write_json
from ws_plugin_pia.transport import PiaError, PiaHttpStatus, json_object

if TYPE_CHECKING:
    import httpx

    from ws_plugin_pia.settings import PiaSettings
    from ws_plugin_pia.store import PiaPaths
    from ws_plugin_pia.transport import PiaHttp

LIFETIME = timedelta(hours=24)
"""How long PIA's tokens are valid."""
MARGIN = timedelta(hours=1)
"""A cached token is replaced this long before it expires, so no call starts with a dying one."""
T = TypeVar("T")


@dataclass(frozen=True)
class Token:
    value: str
    obtained_at: datetime

    @property
    def expires_at(self) -> datetime:
        return self.obtained_at + LIFETIME

    def fresh(self, now: datetime) -> bool:
        return now < self.expires_at - MARGIN


class Tokens:
    """The cached token of one configuration: ``current()`` reuses it, ``renew()`` asks PIA."""

    def __init__(self, http: PiaHttp, settings: PiaSettings, paths: PiaPaths):
        self.http, self.settings, self.paths = http, settings, paths

    def current(self) -> Token:
        token = cached(self.paths)
        if token is not None and token.fresh(datetime.now(UTC)):
            return token
        return self.renew()

    def renew(self) -> Token:
        form = {"username": self.settings.username or "", "password": self.settings.read_password()}
        try:
            response = self.http.post_form(self.settings.token_url, form, "requesting a PIA token")
        except PiaHttpStatus as exc:
            if exc.status in (401, 403):
                raise PiaError(
                    f"PIA refused the credentials (HTTP {exc.status}): check pia.username and pia.password_file"
                ) from None
            raise
        finally:
            form.clear()
        value = token_from(response)
        token = Token(value, datetime.now(UTC))
        write_json(self.paths.token, {"token": token.value, "obtained_at": token.obtained_at.isoformat()})
        return token

    def call(self, request: Callable[[Token], T]) -> T:
        """Run ``request`` with the current token; on HTTP 401 once more with a new one."""
        try:
            return request(self.current())
        except PiaHttpStatus as exc:
            if exc.status != 401:
                raise
        return request(self.renew())


def cached(paths: PiaPaths) -> Token | None:
    """The stored token (fresh or not), None when there is none."""
    data = read_json(paths.token)
    try:
        return Token(str(data["token"]), datetime.fromisoformat(data["obtained_at"])) if data else None
    except (KeyError, ValueError, TypeError):
        return None


def token_from(response: httpx.Response) -> str:
    token = json_object(response, "PIA's token service").get("token")
    if not isinstance(token, str) or not token:
        raise PiaError("PIA's token reply carries no token")
    return token
