"""The state of many workspaces with one request per Incus server (``ws_status_many``), and the one
translation of an instance into a :class:`ws.types.WorkspaceStatus` that ``ws_status`` uses too.

``ws list`` and ``ws status`` run in shell prompts and scripts: this module imports only the standard
library's socket and json (ssl for a remote server) and ws's light modules, never pylxd, requests or
pydantic, and reads the options as the plain data core hands to ``ws_status_many``. Requests are
HTTP/1.0, so each answer is one plain body up to the end of the connection.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from ws.records import State, WorkspaceStatus

from ws_plugin_incus.errors import (
    IncusError,
    NotFound,
    api_error,
    connection_error,
    missing_certificate,
    untrusted_client,
)

if TYPE_CHECKING:
    from ws.errors import WsError
    from ws.types import Workspace

LOCAL_SOCKETS = ("/var/lib/incus/unix.socket", "/run/incus/unix.socket")
"""Where Debian/Ubuntu packages (first) and other builds (second) put incusd's local socket."""
OWNER_KEY = "user.ws.workspace"
"""Every instance ws creates carries it (the workspace's name); one without it is someone else's."""
INSTALLATION_KEY = "user.ws.installation"
"""Which ws installation made the instance (``ws.state.installation_id``): two installations sharing a
project each see the other's instances as foreign. Instances made before the key existed lack it."""
IMAGE_KEY = "user.ws.image"
NIC = "eth0"
STATES = {"running": State.RUNNING, "stopped": State.STOPPED}
TIMEOUT = 30.0
CERTIFICATES = ("client_cert", "client_key", "server_cert")


def local_socket(configured: str | None) -> str:
    """The configured socket, else the first of :data:`LOCAL_SOCKETS` that exists."""
    if configured is not None:
        return configured
    return next((path for path in LOCAL_SOCKETS if os.path.exists(path)), LOCAL_SOCKETS[0])


def owned(instance: dict, workspace: Workspace) -> bool:
    from ws.state import installation_of

    config = instance.get("config") or {}
    made_by = config.get(INSTALLATION_KEY)
    return config.get(OWNER_KEY) == workspace.name and made_by in (None, installation_of(workspace.paths))


def describe(instance: dict | None, workspace: Workspace, endpoint: str) -> WorkspaceStatus:
    """What ``ws_status`` reports for the workspace given its instance as Incus returns it (None: absent)."""
    if instance is None:
        return WorkspaceStatus(State.ABSENT, f"no instance {workspace.instance_name} on {endpoint}")
    if not owned(instance, workspace):
        return WorkspaceStatus(State.ERROR, f"{workspace.instance_name} on {endpoint} exists but was not created by ws")
    state = instance.get("state") or {}
    status_text = (instance.get("status") or "").lower()
    started = _timestamp(state.get("started_at")) if status_text == "running" else None
    location = instance.get("location") if instance.get("location") not in (None, "", "none") else None
    detail = f"{workspace.instance_name} on {location or endpoint}"
    if started is not None:
        detail += f", up {_duration(time.time() - started)}"
    return WorkspaceStatus(
        STATES.get(status_text, State.ERROR),
        detail if status_text in STATES else f"{detail}: Incus reports {instance.get('status')}",
        ip=_address(state),
        image=(instance.get("config") or {}).get(IMAGE_KEY),
        started_at=started,
        extra={"instance": workspace.instance_name, "endpoint": endpoint, "location": location},
    )


def status_many(workspaces: list[Workspace], brief: bool) -> dict[str, WorkspaceStatus | WsError]:
    """Every workspace's status; a server that cannot be asked gives its error to each of its workspaces.

    ``brief``: one ``GET /1.0/instances?recursion=1`` per server and project, whose instances carry their
    status, configuration and location but not their state (addresses, start time: gathering those costs
    the daemon milliseconds per running instance). Otherwise each instance is asked for with its state,
    the request ``ws_status`` makes."""
    groups: dict[tuple, list[Workspace]] = {}
    for workspace in workspaces:
        options = workspace.options or {}
        key = (options.get("url"), options.get("socket"), options.get("project"))
        groups.setdefault(key + tuple(options.get(name) for name in CERTIFICATES), []).append(workspace)
    answers: dict[str, WorkspaceStatus | WsError] = {}
    for group in groups.values():
        options = group[0].options or {}
        endpoint = options.get("url") or local_socket(options.get("socket"))
        try:
            if brief:
                listed = _request(options, endpoint, "instances?recursion=1", "listing instances") or []
                if not listed and options.get("project"):  # Incus lists a missing project as empty
                    project = f"projects/{_quote(options['project'])}"
                    _request(options, endpoint, project, "listing instances", in_project=False)
                found = {item["name"]: item for item in listed}
            else:
                found = {w.instance_name: _instance(options, endpoint, w.instance_name) for w in group}
        except IncusError as exc:
            answers.update(dict.fromkeys((w.name for w in group), exc))
            continue
        for workspace in group:
            answers[workspace.name] = describe(found.get(workspace.instance_name), workspace, endpoint)
    return answers


def _instance(options: dict[str, Any], endpoint: str, name: str) -> dict | None:
    """One instance with its state, or None when there is none."""
    try:
        return _request(options, endpoint, f"instances/{name}?recursion=1", f"reading {name}")
    except NotFound:
        return None


def _request(options: dict[str, Any], endpoint: str, path: str, doing: str, in_project: bool = True) -> Any:
    """``GET /1.0/<path>`` (in the configured project); the answer's metadata, or the error as ws says it."""
    if in_project and options.get("project"):
        path += f"{'&' if '?' in path else '?'}project={_quote(options['project'])}"
    status, body = _get(options, endpoint, f"/1.0/{path}")
    if status == 403 and options.get("url"):
        raise untrusted_client(endpoint, options.get("client_cert"))
    try:
        answer = json.loads(body)
    except ValueError:
        raise api_error(doing, status, f"HTTP {status} with a body that is not JSON", options.get("project")) from None
    if status != 200 or answer.get("type") == "error":
        message = answer.get("error") or f"HTTP {status}"
        raise api_error(doing, answer.get("error_code") or status, message, options.get("project"))
    return answer.get("metadata")


def _get(options: dict[str, Any], endpoint: str, path: str) -> tuple[int, bytes]:
    """One HTTP/1.0 GET: the status and the body (read to the end of the connection)."""
    remote = bool(options.get("url"))
    host = endpoint.removeprefix("https://") if remote else "incus"
    try:
        with _connect(options, endpoint) if remote else _connect_local(endpoint) as connection:
            request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\nUser-Agent: ws\r\n\r\n"
            connection.sendall(request.encode())
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise connection_error(endpoint, exc, remote) from None
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ", 2)[1]), body
    except (IndexError, ValueError):
        raise connection_error(endpoint, OSError(f"not an HTTP answer: {head[:80]!r}"), remote) from None


def _connect_local(path: str) -> socket.socket:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(TIMEOUT)
    try:
        connection.connect(path)
    except OSError:
        connection.close()
        raise
    return connection


def _connect(options: dict[str, Any], url: str) -> socket.socket:
    """TLS to a remote server: our client certificate, the server's pinned one as the only trust anchor."""
    import ssl

    for key in CERTIFICATES:
        if not os.path.isfile(options[key]):
            raise missing_certificate(key, options[key], url)
    address = url.removeprefix("https://")
    host, _, port = address.rpartition(":") if address.rpartition(":")[2].isdigit() else (address, "", "8443")
    context = ssl.create_default_context(cafile=options["server_cert"])
    context.load_cert_chain(options["client_cert"], options["client_key"])
    raw = socket.create_connection((host.strip("[]"), int(port)), timeout=TIMEOUT)
    try:
        return context.wrap_socket(raw, server_hostname=host.strip("[]"))
    except OSError:
        raw.close()
        raise


def _quote(text: str) -> str:
    """Percent-encoding of a query value (urllib.parse would import ipaddress, and more, for this)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-._~") else f"%{ord(c):02X}" for c in text)


def _address(state: dict) -> str | None:
    nic = (state.get("network") or {}).get(NIC) or {}
    return next((a["address"] for a in nic.get("addresses") or () if a.get("family") == "inet"), None)


def _timestamp(text: str | None) -> float | None:
    from datetime import datetime

    if not text or text.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"
