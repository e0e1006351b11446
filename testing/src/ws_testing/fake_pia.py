"""A fake Private Internet Access API speaking the real protocol, for ws's tests.

What it serves (facts: shared reference ``pia-api.md``):

* HTTPS only, with certificates issued by a test CA made here: one certificate per server ``cn`` (chosen by
  SNI on a shared listener), the serverlist and token hosts' certificates also name their IP address (so an
  IP-literal URL verifies);
* ``GET /vpninfo/servers/v6``: the JSON line, a blank line, a base64 RSA-SHA256 signature (test key);
* ``POST /api/client/v2/token`` with form fields ``username`` and ``password`` -> ``{"token"}`` or 401;
* ``GET /addKey?pt=&pubkey=`` on each WireGuard server's ``ip:wg_port`` (``Login failed!`` for unknown tokens);
* ``GET /getSignature?token=`` and ``GET /bindPort?payload=&signature=`` on each server's VIP ``:pf_port``;
* plain TCP on each online region's meta servers ``ip:meta_port`` (what ``auto`` times).

Faults are queued per endpoint (``serverlist``, ``token``, ``addKey``, ``getSignature``, ``bindPort``):
an HTTP status (401, 409, ...), ``login_failed``, ``bad_signature``, ``drop`` (close without answering),
``slow`` (answer after ``seconds``), ``short`` and ``tamper`` (server list), ``expires_in`` (the next
signature expires after ``seconds``). Every request is recorded with its raw request line and body.

Only the standard library and ``cryptography``, so it runs anywhere ws runs. Two ways to use it:

* in-process: ``FakePia(spec).start()`` (the unit tier, on loopback addresses);
* as a program, e.g. inside a network namespace: ``python fake_pia.py SPEC.json DIR`` writes ``DIR/ca.crt``,
  ``DIR/serverlist.pub``, then ``DIR/ready``; appends every call to ``DIR/calls.jsonl`` and takes faults
  from ``DIR/faults.json`` (written atomically by the test; consumed at the next request) until SIGTERM.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ENDPOINTS = ("serverlist", "token", "addKey", "getSignature", "bindPort")
SERVERLIST_PATH = "/vpninfo/servers/v6"
TOKEN_PATH = "/api/client/v2/token"
DNS_SERVERS = ["10.0.0.243", "10.0.0.242"]


# --- test PKI --------------------------------------------------------------------------------------------


class TestCA:
    """A throw-away certificate authority (EC P-256: fast to make)."""

    def __init__(self, common_name: str = "ws test PIA CA"):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )

        self._folder: str | None = None
        self._files: dict[tuple[str, ...], tuple[str, str]] = {}

    @property
    def pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def chain_files(self, names: list[str]) -> tuple[str, str]:
        """(certificate chain file, key file) for ``names``, issued once per CA and kept until exit (ssl
        loads certificates only from files; fakes made again for the same names reuse them)."""
        key = tuple(names)
        if key not in self._files:
            if self._folder is None:
                self._folder = tempfile.mkdtemp(prefix="fake-pia-certs-")
                weakref.finalize(self, shutil.rmtree, self._folder, True)
            certificate, private = self.issue(names)
            base = Path(self._folder) / str(len(self._files))
            base.with_suffix(".crt").write_bytes(certificate + self.pem)
            base.with_suffix(".key").write_bytes(private)
            self._files[key] = (str(base.with_suffix(".crt")), str(base.with_suffix(".key")))
        return self._files[key]

    def issue(self, names: list[str]) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) for ``names`` (host names and IP addresses); the first is the CN."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return certificate.public_bytes(serialization.Encoding.PEM), key_pem


# --- the service's description ---------------------------------------------------------------------------


@dataclass
class WgServer:
    ip: str
    cn: str
    vip: str
    presented_cn: str | None = None
    """Serve a certificate for this name instead of ``cn`` (the wrong-CN test)."""


@dataclass
class RegionSpec:
    id: str
    name: str
    country: str = "CH"
    port_forward: bool = True
    geo: bool = False
    offline: bool = False
    meta: list[tuple[str, str]] = field(default_factory=list)
    """(ip, cn) of meta servers; those of online regions accept TCP on ``meta_port``."""
    wg: list[WgServer] = field(default_factory=list)


@dataclass
class Spec:
    username: str
    password: str
    regions: list[RegionSpec]
    serverlist_host: str = "serverlist.piaservers.net"
    serverlist_address: str = "127.0.0.1"
    serverlist_port: int = 443
    token_host: str = "www.privateinternetaccess.com"
    token_address: str = "127.0.0.1"
    token_port: int = 443
    wg_port: int = 1337
    pf_port: int = 19999
    meta_port: int = 443
    port_lifetime_days: float = 60.0
    pad_to: int = 1200
    """PIA's list is long; a list below 1000 bytes means failure, so the fake pads its JSON to this size."""
    wg_interface: str | None = None
    """A real WireGuard interface of the fake's namespace (the VM tier): addKey adds the client's key to it as
    a peer (``wg set``) and answers with its public key ``wg_public_key``. None: a random server key."""
    wg_public_key: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Spec:
        regions = [
            RegionSpec(**{**r, "meta": [tuple(m) for m in r.get("meta", [])], "wg": [WgServer(**w) for w in r["wg"]]})
            for r in data["regions"]
        ]
        return cls(**{**data, "regions": regions})


@dataclass
class Call:
    endpoint: str
    method: str
    target: str
    """The raw request target (path and query) as received."""
    host: str
    sni: str | None
    body: str
    local: str
    """``address:port`` the request arrived at."""


@dataclass
class Fault:
    endpoint: str
    kind: str
    seconds: float = 0.0
    times: int = 1


# --- the service ------------------------------------------------------------------------------------------


class FakePia:
    """Listeners for every address of the spec; ``start()`` returns once all listen."""

    def __init__(self, spec: Spec, ca: TestCA | None = None, control_dir: Path | None = None, list_key: Any = None):
        """``ca`` and ``list_key`` (an RSA private key signing the server list) are made when not given;
        tests share them across fakes because an RSA key takes up to a second to generate."""
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.spec = spec
        self.ca = ca or TestCA()
        self.list_key = list_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.control_dir = control_dir
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.tokens: set[str] = set()
        self.bound_ports: list[int] = []
        self._signing_secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []
        self._meta_sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    # --- public API for tests ---

    @property
    def list_public_key_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.list_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def add_fault(self, endpoint: str, kind: str, seconds: float = 0.0, times: int = 1) -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r} (one of {', '.join(ENDPOINTS)})")
        with self._lock:
            self.faults.append(Fault(endpoint, kind, seconds, times))

    def count(self, endpoint: str) -> int:
        with self._lock:
            return sum(1 for call in self.calls if call.endpoint == endpoint)

    def serverlist_url(self, by_address: bool = False) -> str:
        host = self.spec.serverlist_address if by_address else self.spec.serverlist_host
        return f"https://{host}:{self.spec.serverlist_port}{SERVERLIST_PATH}"

    def token_url(self, by_address: bool = False) -> str:
        host = self.spec.token_address if by_address else self.spec.token_host
        return f"https://{host}:{self.spec.token_port}{TOKEN_PATH}"

    def serverlist_body(self, tamper: bool = False) -> bytes:
        line = json.dumps(self._serverlist_json()).encode()
        line += b" " * max(0, self.spec.pad_to - len(line))
        signature = self._sign_list(line)
        if tamper:
            line = line.replace(b'"offline": false', b'"offline": true ', 1)
        return line + b"\n\n" + base64.b64encode(signature) + b"\n"

    def start(self) -> FakePia:
        listeners: dict[tuple[str, int], list[list[str]]] = {}

        def serve(address: str, port: int, names: list[str]) -> None:
            listeners.setdefault((address, port), []).append(names)

        spec = self.spec
        serve(spec.serverlist_address, spec.serverlist_port, [spec.serverlist_host, spec.serverlist_address])
        serve(spec.token_address, spec.token_port, [spec.token_host, spec.token_address])
        for region in spec.regions:
            for server in region.wg:
                serve(server.ip, spec.wg_port, [server.presented_cn or server.cn])
                serve(server.vip, spec.pf_port, [server.presented_cn or server.cn])
        for (address, port), names in listeners.items():
            self._listen_https(address, port, names)
        for region in spec.regions:
            if not region.offline:
                for ip, _cn in region.meta:
                    self._listen_tcp(ip, spec.meta_port)
        return self

    def stop(self) -> None:
        """Close every listener (idempotent)."""
        stopping = [threading.Thread(target=server.shutdown) for server in self._servers]  # each waits a poll
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        for server in self._servers:
            server.server_close()
        for sock in self._meta_sockets:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept(); close() alone does not
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._meta_sockets, self._threads = [], [], []

    def __enter__(self) -> FakePia:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- protocol ---

    def _serverlist_json(self) -> dict[str, Any]:
        return {
            "groups": {"wg": [{"name": "wireguard", "ports": [self.spec.wg_port]}], "meta": [{"ports": [443]}]},
            "regions": [
                {
                    "id": region.id,
                    "name": region.name,
                    "country": region.country,
                    "dns": f"{region.id}.privacy.network",
                    "port_forward": region.port_forward,
                    "geo": region.geo,
                    "offline": region.offline,
                    "servers": {
                        "meta": [{"ip": ip, "cn": cn} for ip, cn in region.meta],
                        "wg": [{"ip": server.ip, "cn": server.cn} for server in region.wg],
                    },
                }
                for region in self.spec.regions
            ],
        }

    def _sign_list(self, line: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        return self.list_key.sign(line, padding.PKCS1v15(), hashes.SHA256())

    def _sign_payload(self, payload: str) -> str:
        return base64.b64encode(hmac.new(self._signing_secret, payload.encode(), hashlib.sha256).digest()).decode()

    def _server_for(self, local_address: str) -> WgServer | None:
        for region in self.spec.regions:
            for server in region.wg:
                if local_address in (server.ip, server.vip):
                    return server
        return None

    def handle(self, endpoint: str, query: dict[str, str], body: dict[str, str], local: str) -> tuple[int, bytes]:
        """The answer to one request after faults: (HTTP status, body)."""
        if endpoint == "serverlist":
            return 200, self.serverlist_body()
        if endpoint == "token":
            if body.get("username") != self.spec.username or body.get("password") != self.spec.password:
                return 401, b'{"message":"authentication failed"}'
            token = secrets.token_hex(16)
            with self._lock:
                self.tokens.add(token)
            return 200, json.dumps({"token": token}).encode()
        server = self._server_for(local)
        if server is None:
            return 404, b"{}"
        if endpoint == "addKey":
            return 200, json.dumps(self._add_key(query, server)).encode()
        if endpoint == "getSignature":
            return self.signature_reply(query)
        return 200, json.dumps(self._bind_port(query)).encode()

    def _add_key(self, query: dict[str, str], server: WgServer) -> dict[str, Any]:
        if query.get("pt") not in self.tokens:
            return {"status": "ERROR", "message": "Login failed!"}
        try:
            if len(base64.b64decode(query.get("pubkey", ""), validate=True)) != 32:
                raise ValueError
        except ValueError:
            return {"status": "ERROR", "message": "invalid public key"}
        peer_ip = f"10.{secrets.randbelow(200) + 10}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 2}"
        server_key = base64.b64encode(secrets.token_bytes(32)).decode()
        if self.spec.wg_interface is not None:
            import subprocess

            command = ["wg", "set", self.spec.wg_interface, "peer", query["pubkey"], "allowed-ips", f"{peer_ip}/32"]
            subprocess.run(command, check=True, capture_output=True, timeout=10)
            server_key = str(self.spec.wg_public_key)
        return {
            "status": "OK",
            "server_key": server_key,
            "server_port": self.spec.wg_port,
            "server_ip": server.ip,
            "server_vip": server.vip,
            "peer_ip": peer_ip,
            "peer_pubkey": query["pubkey"],
            "dns_servers": DNS_SERVERS,
        }

    def signature_reply(self, query: dict[str, str], lifetime: dt.timedelta | None = None) -> tuple[int, bytes]:
        token = query.get("token")
        if token not in self.tokens:
            return 200, b'{"status":"ERROR","message":"invalid token"}'
        lifetime = lifetime or dt.timedelta(days=self.spec.port_lifetime_days)
        expires = (dt.datetime.now(dt.UTC) + lifetime).isoformat(timespec="seconds").replace("+00:00", "Z")
        port = 20000 + secrets.randbelow(40000)
        payload = base64.b64encode(json.dumps({"token": token, "port": port, "expires_at": expires}).encode()).decode()
        answer = {"status": "OK", "payload": payload, "signature": self._sign_payload(payload)}
        return 200, json.dumps(answer).encode()

    def _bind_port(self, query: dict[str, str]) -> dict[str, Any]:
        payload, signature = query.get("payload", ""), query.get("signature", "")
        if not hmac.compare_digest(self._sign_payload(payload), signature):
            return {"status": "ERROR", "message": "invalid signature"}
        data = json.loads(base64.b64decode(payload))
        if dt.datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00")) < dt.datetime.now(dt.UTC):
            return {"status": "ERROR", "message": "signature expired"}
        with self._lock:
            self.bound_ports.append(int(data["port"]))
        return {"status": "OK", "message": "port scheduled for add"}

    def take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            self._absorb_fault_file()
            for fault in self.faults:
                if fault.endpoint == endpoint:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
            if self.control_dir is not None:
                with (self.control_dir / "calls.jsonl").open("a") as file:
                    file.write(json.dumps(asdict(call)) + "\n")

    def _absorb_fault_file(self) -> None:
        if self.control_dir is None:
            return
        path, taken = self.control_dir / "faults.json", self.control_dir / ".faults.taken"
        try:
            os.rename(path, taken)
        except FileNotFoundError:
            return
        self.faults += [Fault(**item) for item in json.loads(taken.read_text())]
        taken.unlink()

    # --- sockets ---

    def _listen_https(self, address: str, port: int, name_sets: list[list[str]]) -> None:
        contexts = [self._tls_context(names) for names in name_sets]
        by_name = {name: context for names, context in zip(name_sets, contexts, strict=True) for name in names}
        default = contexts[0]

        def choose(sock: ssl.SSLSocket, server_name: str | None, _context: ssl.SSLContext) -> None:
            sock.context = by_name.get(server_name or "", default)
            sock.sni = server_name  # type: ignore[attr-defined] - read back by the handler

        default.sni_callback = choose
        fake = self

        class Handler(_Handler):
            pia = fake

        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        server = _Server((address, port), Handler, bind_and_activate=False)
        server.address_family = family
        server.socket = socket.socket(family, socket.SOCK_STREAM)
        server.server_bind()
        server.server_activate()
        server.socket = default.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._servers.append(server)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _tls_context(self, names: list[str]) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.ca.chain_files(names))
        return context

    def _listen_tcp(self, address: str, port: int) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(64)
        self._meta_sockets.append(sock)

        def accept() -> None:
            while True:
                try:
                    connection, _ = sock.accept()
                except OSError:
                    return
                connection.close()

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        self._threads.append(thread)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        """Without HTTPServer's reverse DNS lookup of the address (there is no DNS in test namespaces)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that fail the TLS handshake (the untrusted-CA tests) or vanish are expected."""


class _Handler(BaseHTTPRequestHandler):
    pia: FakePia
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:  # quiet: calls are recorded instead
        pass

    def setup(self) -> None:
        self.request.do_handshake()  # in this handler's thread, so one bad client cannot block the listener
        super().setup()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body_text = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        endpoint = _endpoint(method, parts.path)
        local = self.connection.getsockname()
        call = Call(
            endpoint or "unknown",
            method,
            self.path,
            self.headers.get("Host", ""),
            getattr(self.connection, "sni", None),
            body_text,
            f"{local[0]}:{local[1]}",
        )
        self.pia.record(call)
        if endpoint is None:
            self._answer(404, b'{"message":"not found"}')
            return
        fault = self.pia.take_fault(endpoint)
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            self.connection.close()
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
            fault = None
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        form = {key: values[0] for key, values in parse_qs(body_text).items()}
        status, body = self._faulted(fault, endpoint, query) if fault else (None, b"")
        if status is None:
            status, body = self.pia.handle(endpoint, query, form, local[0])
        self._answer(status, body)

    def _faulted(self, fault: Fault, endpoint: str, query: dict[str, str]) -> tuple[int | None, bytes]:
        if fault.kind.isdigit():
            return int(fault.kind), b'{"message":"fault injected"}'
        if fault.kind == "login_failed":
            return 200, b'{"status":"ERROR","message":"Login failed!"}'
        if fault.kind == "bad_signature":
            return 200, b'{"status":"ERROR","message":"invalid signature"}'
        if fault.kind == "short":
            return 200, b"{}"
        if fault.kind == "tamper":
            return 200, self.pia.serverlist_body(tamper=True)
        if fault.kind == "expires_in" and endpoint == "getSignature":
            return self.pia.signature_reply(query, dt.timedelta(seconds=fault.seconds))
        raise ValueError(f"fault {fault.kind!r} does not apply to {endpoint}")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _endpoint(method: str, path: str) -> str | None:
    routes = {
        ("GET", SERVERLIST_PATH): "serverlist",
        ("POST", TOKEN_PATH): "token",
        ("GET", "/addKey"): "addKey",
        ("GET", "/getSignature"): "getSignature",
        ("GET", "/bindPort"): "bindPort",
    }
    return routes.get((method, path))


USERNAME = "p1234567"
PASSWORD = "pw-Secr3t-d0-not-leak"
"""The example account (tests look for this password everywhere it must not be)."""


def example_spec(prefix: str, **overrides: Any) -> Spec:
    """Five regions on addresses ``PREFIX.N``: two forwarding ports, one US-like without, one geo, one
    offline; serverlist and token hosts share ``PREFIX.1:8443`` (certificates chosen by SNI); meta servers
    on 4443 (so the loopback tier needs no root; a namespace tier overrides it with 443)."""

    def region(number: int, rid: str, cn: str, **flags: Any) -> RegionSpec:
        meta = [(f"{prefix}.{20 + number}", f"{cn}-meta")]
        wg = [WgServer(f"{prefix}.{10 + number}", cn, f"{prefix}.{110 + number}")]
        return RegionSpec(rid, rid.replace("_", " ").title(), meta=meta, wg=wg, **flags)

    values: dict[str, Any] = {
        "username": USERNAME,
        "password": PASSWORD,
        "regions": [
            region(0, "swiss", "zurich401"),
            region(1, "de_berlin", "berlin402"),
            region(2, "us_east", "newjersey403", port_forward=False),
            region(3, "geo_land", "geo404", geo=True),
            region(4, "gone", "gone405", offline=True),
        ],
        "serverlist_host": "serverlist.pia.test",
        "serverlist_address": f"{prefix}.1",
        "serverlist_port": 8443,
        "token_host": "www.pia.test",
        "token_address": f"{prefix}.1",
        "token_port": 8443,
        "meta_port": 4443,
    }
    values.update(overrides)
    return Spec(**values)


def main(argv: list[str]) -> int:
    """``fake_pia.py SPEC.json DIR``: serve until SIGTERM (see the module docstring)."""
    if len(argv) != 2:
        print("usage: fake_pia.py SPEC.json DIR", file=sys.stderr)
        return 2
    spec = Spec.from_json(json.loads(Path(argv[0]).read_text()))
    folder = Path(argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    fake = FakePia(spec, control_dir=folder)
    (folder / "ca.crt").write_bytes(fake.ca.pem)
    (folder / "serverlist.pub").write_bytes(fake.list_public_key_pem)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    fake.start()
    (folder / "ready").write_text(str(os.getpid()))
    stop.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
