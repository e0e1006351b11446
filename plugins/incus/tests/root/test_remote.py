"""The remote path: the same daemon reached over HTTPS with a client certificate and a pinned server
certificate, configured per workspace in ``[workspaces.NAME.incus]`` (as for an Incus cluster)."""

from __future__ import annotations

import datetime
import secrets
import socket
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def _client_certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ws-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA384())
    )  # fmt: skip
    folder.mkdir(mode=0o700)
    cert_path, key_path = folder / "client.crt", folder / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def remote(wsenv):
    """HTTPS on 127.0.0.1 (only if the daemon has no address yet), a trusted client certificate, and the
    workspace configured to use them."""
    name = wsenv.name("remote")
    address = wsenv.incus("config", "get", "core.https_address").stdout.strip()
    enabled_here = not address
    if enabled_here:
        address = f"127.0.0.1:{_free_port()}"
        wsenv.incus("config", "set", "core.https_address", address)
    folder = wsenv.root / f"remote-client-{secrets.token_hex(2)}"
    cert, key = _client_certificate(folder)
    server_cert = folder / "server.crt"  # what `incus remote add` would pin
    server_cert.write_text(wsenv.server_info()["environment"]["certificate"])
    trust_name = f"ws-test-{wsenv.root.name}"
    wsenv.incus("config", "trust", "add-certificate", str(cert), "--name", trust_name)
    wsenv.incus_options[name] = {
        "url": f'"https://{address.replace("0.0.0.0", "127.0.0.1").replace("[::]", "127.0.0.1")}"',
        "client_cert": f'"{cert}"',
        "client_key": f'"{key}"',
        "server_cert": f'"{server_cert}"',
        "shared_paths": "true",  # the same daemon, so the same machine's folders
    }
    wsenv.write_config()
    try:
        yield name
    finally:
        wsenv.ws("destroy", name, check=False)
        wsenv.incus_options.pop(name, None)
        wsenv.write_config()
        fingerprints = [
            c["fingerprint"] for c in wsenv.incus_json("config", "trust", "list") if c["name"] == trust_name
        ]
        for fingerprint in fingerprints:
            wsenv.incus("config", "trust", "remove", fingerprint, check=False)
        if enabled_here:
            wsenv.incus("config", "unset", "core.https_address", check=False)


def test_lifecycle_over_https(wsenv, remote):
    name = remote
    up = wsenv.ws("up", name, "--json")
    assert '"action": "created"' in up.stdout
    status = wsenv.status(name)
    assert status["state"] == "running"
    assert status["extra"]["endpoint"].startswith("https://127.0.0.1:")
    assert wsenv.both_statuses(name).state == "running"  # ws_status_many over the stdlib's TLS too
    login = wsenv.ssh(name, "cat /sys/class/net/eth0/address")
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == status["mac"]
    result = wsenv.ws("exec", name, "--", "sh", "-c", "echo remote; exit 3", check=False)
    assert (result.returncode, result.stdout) == (3, "remote\n"), result.stderr
    wsenv.ws("down", name)
    assert wsenv.instances([name]) == {}


def test_untrusted_certificate_is_a_sentence(wsenv, remote):
    other = wsenv.root / "untrusted"
    cert, key = _client_certificate(other)
    wsenv.incus_options[remote] = {**wsenv.incus_options[remote], "client_cert": f'"{cert}"', "client_key": f'"{key}"'}
    wsenv.write_config()
    result = wsenv.ws("status", remote, check=False)
    assert result.returncode == 1
    assert "does not trust ws's client certificate" in result.stderr and "Traceback" not in result.stderr
