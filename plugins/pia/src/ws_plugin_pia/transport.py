"""HTTPS to PIA's API: only ``ca_file`` is trusted, and a server is reached by IP address while its
certificate is verified against the name the server list gives (httpx's ``sni_hostname`` extension, the
equivalent of curl's ``--connect-to CN::IP:``). Verification is never turned off.

Errors become one sentence naming the server (never the URL: its query may carry the token).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ws.errors import WsError
from ws.log import get_logger

if TYPE_CHECKING:
    import httpx

    from ws_plugin_pia.settings import PiaSettings


class PiaError(WsError):
    """PIA's API failed or answered something ws cannot use."""


class PiaTimeout(PiaError):
    """A PIA server did not answer in time (callers may retry)."""


class PiaHttpStatus(PiaError):
    """A PIA server answered with an HTTP error status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Target:
    """Where to connect and which name the server's certificate must carry."""

    address: str
    port: int
    name: str

    def __str__(self) -> str:
        where = f"{self.address}:{self.port}"
        return where if self.name == self.address else f"{self.name} ({where})"


class PiaHttp:
    """One httpx client for every call of a command (connections are reused per server)."""

    def __init__(
        self,
        ca_file: Path,
        hosts: dict[str, Any] | None = None,
        connect_timeout: float = 10.0,
        request_timeout: float = 20.0,
    ):
        self.hosts = {name: str(address) for name, address in (hosts or {}).items()}
        self.context = ssl.create_default_context(cafile=str(ca_file))  # given a cafile, no system CA is loaded
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.timeouts = (connect_timeout, request_timeout)
        self.clients: dict[str, httpx.Client] = {}
        self.log = get_logger(component="pia")

    def _client(self, name: str) -> httpx.Client:
        """One connection pool per TLS name: httpx pools by address, and a connection verified for one
        name must never carry a request meant for another name at the same address."""
        import httpx

        if name not in self.clients:
            connect, request = self.timeouts
            timeout = httpx.Timeout(request, connect=connect)
            self.clients[name] = httpx.Client(verify=self.context, timeout=timeout, trust_env=False)
        return self.clients[name]

    @classmethod
    def from_settings(cls, settings: PiaSettings) -> PiaHttp:
        assert settings.ca_file is not None  # a configured section has one
        return cls(settings.ca_file, settings.hosts, settings.connect_timeout, settings.request_timeout)

    def __enter__(self) -> PiaHttp:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.clients.clear()

    def url_target(self, url: str) -> tuple[Target, str]:
        """The target of a configured URL and the URL to request (its host replaced by a ``hosts`` address)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or 443
        address = self.hosts.get(host, host)
        netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        return Target(address, port, host), urlunsplit(parts._replace(netloc=netloc))

    def get_url(self, url: str, what: str) -> httpx.Response:
        target, request_url = self.url_target(url)
        return self._send("GET", request_url, target, what)

    def post_form(self, url: str, form: dict[str, str], what: str) -> httpx.Response:
        """POST form fields in the body (how the password travels: never in the URL)."""
        target, request_url = self.url_target(url)
        return self._send("POST", request_url, target, what, data=form)

    def get_server(self, target: Target, path: str, params: dict[str, str], what: str) -> httpx.Response:
        """GET ``https://<cn>:<port><path>`` connecting to the server's address."""
        host = f"[{target.address}]" if ":" in target.address else target.address
        return self._send("GET", f"https://{host}:{target.port}{path}", target, what, params=params)

    def _send(self, method: str, url: str, target: Target, what: str, **kwargs: Any) -> httpx.Response:
        """One request, retried once when the server drops the connection (a rebooting server does)."""
        import httpx

        extensions = {} if _is_ip(target.name) else {"sni_hostname": target.name}
        headers = {"Host": target.name if target.port == 443 else f"{target.name}:{target.port}"}
        for attempt in (1, 2):
            try:
                response = self._client(target.name).request(
                    method, url, headers=headers, extensions=extensions, **kwargs
                )
            except httpx.TimeoutException:
                raise PiaTimeout(f"{what}: {target} did not answer in time") from None
            except httpx.ConnectError as exc:
                raise PiaError(f"{what}: cannot connect to {target}: {_connect_reason(exc, target)}") from None
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                self.log.debug("pia connection dropped", what=what, server=str(target), attempt=attempt)
                if attempt == 2:
                    raise PiaError(f"{what}: {target} closed the connection ({type(exc).__name__})") from None
                continue
            self.log.debug("pia request", what=what, server=str(target), status=response.status_code)
            if response.status_code >= 400:
                raise PiaHttpStatus(f"{what}: {target} answered HTTP {response.status_code}", response.status_code)
            return response
        raise AssertionError("unreachable")


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The reply's JSON object, or an error saying ``what`` answered something else."""
    try:
        data = response.json()
    except ValueError:
        raise PiaError(f"{what} did not answer JSON") from None
    if not isinstance(data, dict):
        raise PiaError(f"{what} did not answer a JSON object")
    return data


def _connect_reason(exc: Exception, target: Target) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"its certificate is not valid for {target.name!r} under the configured ca_file "
                f"({cause.verify_message or cause.reason})"
            )
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed ({cause.reason or cause})"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return f"its certificate is not valid for {target.name!r} under the configured ca_file ({text})"
    return text or type(exc).__name__


def _is_ip(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True
