"""The connection to Incus: the local socket or a remote server over HTTPS, through pylxd.

pylxd is imported and the client created only when a hook needs the server, never at import. One client per
thread and endpoint: ``ws up a b c`` runs workspaces in threads, and a pylxd session's unix-socket pool
holds a single connection. Requests go through pylxd's raw API node (``/1.0/...``) so ws controls exactly
how many calls an operation costs; pylxd's models are used where they add something (exec streaming).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ws_plugin_incus.errors import api_error, connection_error, missing_certificate, untrusted_client

if TYPE_CHECKING:
    from ws_plugin_incus.settings import IncusSettings

OPERATION_TIMEOUT = 600
_local = threading.local()


class Api:
    """Raw ``/1.0`` requests with Incus errors turned into :class:`IncusError` sentences."""

    def __init__(self, client: Any, settings: IncusSettings):
        self.client = client
        self.settings = settings
        self.endpoint = settings.endpoint()

    @property
    def info(self) -> dict:
        """``GET /1.0`` as fetched when connecting: server version, environment, extensions."""
        return self.client.host_info

    def request(self, method: str, path: str, doing: str, **kwargs: Any) -> Any:
        """``method`` on ``/1.0/<path>``; returns the response's ``metadata`` (an operation: its result)."""
        response = self.raw(method, path, doing, **kwargs)
        body = response.json() if response.content else {}
        if body.get("type") == "async":
            return self.wait(body["operation"], doing)
        return body.get("metadata")

    def get(self, path: str, doing: str, **params: Any) -> Any:
        return self.request("get", path, doing, **({"params": params} if params else {}))

    def wait(self, operation: str, doing: str, timeout: int = OPERATION_TIMEOUT) -> dict:
        """Wait for a background operation; its failure becomes an IncusError."""
        path = operation.removeprefix("/1.0/").split("?")[0]
        result = self.request("get", f"{path}/wait", doing, params={"timeout": timeout})
        if result.get("status_code") != 200:
            raise api_error(doing, 400, result.get("err") or result.get("status") or "operation failed")
        return result.get("metadata") or {}

    def raw(self, method: str, path: str, doing: str, **kwargs: Any) -> Any:
        """The ``requests`` response of ``method`` on ``/1.0/<path>`` (errors mapped, body not read)."""
        from pylxd.exceptions import LXDAPIException
        from requests.exceptions import RequestException

        node = self.client.api
        for segment in path.strip("/").split("/"):
            node = node[segment]
        try:
            return getattr(node, method)(**kwargs)
        except LXDAPIException as exc:
            raise api_error(doing, exc.response.status_code, _message(exc.response), self.settings.project) from None
        except RequestException as exc:
            raise connection_error(self.endpoint, exc, self.settings.remote) from None


def connect(settings: IncusSettings) -> Api:
    """The calling thread's connection to ``settings``' endpoint (made on first use)."""
    cache: dict = getattr(_local, "clients", None) or {}
    _local.clients = cache
    key = (settings.endpoint(), settings.project, settings.client_cert, settings.client_key, settings.server_cert)
    if key not in cache:
        cache[key] = _new_client(settings)
    return Api(cache[key], settings)


def _new_client(settings: IncusSettings) -> Any:
    import pylxd
    from pylxd.exceptions import ClientConnectionFailed

    endpoint = settings.endpoint()
    if settings.remote:
        for key in ("client_cert", "client_key", "server_cert"):
            path = getattr(settings, key)
            if not path.is_file():
                raise missing_certificate(key, path, endpoint)
        cert = (str(settings.client_cert), str(settings.client_key))
        session = pylxd.client.get_session_for_url(endpoint, verify=str(settings.server_cert), cert=cert)
        session.trust_env = False  # REQUESTS_CA_BUNDLE & co. would replace the pinned server certificate
        kwargs: dict[str, Any] = {"cert": cert, "session": session}
    else:
        socket = settings.local_socket()
        if not socket.exists():
            raise connection_error(str(socket), FileNotFoundError(str(socket)), remote=False)
        kwargs = {}
    try:
        client = pylxd.Client(endpoint=endpoint, project=settings.project, **kwargs)
    except ClientConnectionFailed as exc:
        raise connection_error(endpoint, exc, settings.remote) from None
    except OSError as exc:
        raise connection_error(endpoint, exc, settings.remote) from None
    if settings.remote and not client.trusted:
        raise untrusted_client(endpoint, settings.client_cert)
    return client


def _message(response: Any) -> str:
    try:
        return response.json().get("error") or response.reason
    except ValueError:
        return f"HTTP {response.status_code} {response.reason}"
