"""Root tier: the fake PIA service runs as its own program (ws_testing/fake_pia.py) inside a network
namespace this module creates, on PIA's real ports (443, 1337, 19999); the real ``ws`` command runs in the
host namespace and reaches it over a veth pair. Proves the whole part-1 flow end to end: one list, one
token, one addKey; the password in no URL, no /proc/*/cmdline or environ while ws runs, no log line; port
forwarding state across restarts and its refreshes; latency order of ``auto`` with real delays (netem)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import ws_testing.fake_pia as fake_module
from ws_testing.fake_pia import PASSWORD, USERNAME, RegionSpec, WgServer, example_spec

pytestmark = pytest.mark.root

WS = Path(sys.executable).with_name("ws")


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    return subprocess.run([*prefix, *args], capture_output=True, text=True, check=check, timeout=30)


@dataclasses.dataclass
class FakeService:
    ns: str
    host_if: str
    prefix: str
    folder: Path
    spec: Any
    process: subprocess.Popen

    def calls(self) -> list[dict[str, Any]]:
        path = self.folder / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def counts(self, since: int = 0) -> dict[str, int]:
        result = dict.fromkeys(fake_module.ENDPOINTS, 0)
        for call in self.calls()[since:]:
            result[call["endpoint"]] += 1
        return result

    def fault(self, *faults: tuple[str, str] | tuple[str, str, float]) -> None:
        """Queue ``(endpoint, kind[, seconds])`` faults through the control folder (atomically: the fake
        takes the file at its next request)."""
        path = self.folder / "faults.json"
        assert not path.exists(), "previous faults not taken yet"
        tmp = self.folder / ".faults.new"
        tmp.write_text(
            json.dumps([{"endpoint": f[0], "kind": f[1], "seconds": f[2] if len(f) > 2 else 0} for f in faults])
        )
        os.rename(tmp, path)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeService]:
    suffix = secrets.token_hex(3)
    ns, host_if, peer_if = f"wspia-{suffix}", f"wpa{suffix}", f"wpb{suffix}"
    prefix = f"198.{random.choice((18, 19))}.{random.randint(0, 255)}"
    folder = tmp_path_factory.mktemp("fake-pia")
    regions = example_spec(prefix).regions + [
        RegionSpec("impostor_land", "Impostor", geo=True, meta=[(f"{prefix}.25", "imp-meta")],
                   wg=[WgServer(f"{prefix}.15", "imp406", f"{prefix}.115", presented_cn="evil.example")]),
    ]  # fmt: skip
    spec = example_spec(prefix, regions=regions, serverlist_port=443, token_port=443, meta_port=443)
    (folder / "spec.json").write_text(json.dumps(dataclasses.asdict(spec)))
    addresses = sorted({spec.serverlist_address, spec.token_address} | {ip for r in regions for ip, _ in r.meta}
                       | {a for r in regions for w in r.wg for a in (w.ip, w.vip)})  # fmt: skip
    process = None
    try:
        _ip("ip", "netns", "add", ns)
        _ip("ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        _ip("ip", "link", "set", peer_if, "netns", ns)
        _ip("ip", "addr", "add", f"{prefix}.254/24", "dev", host_if)
        _ip("ip", "link", "set", host_if, "up")
        _ip("ip", "link", "set", "lo", "up", ns=ns)
        for address in addresses:
            _ip("ip", "addr", "add", f"{address}/24", "dev", peer_if, ns=ns)
        _ip("ip", "link", "set", peer_if, "up", ns=ns)
        command = [
            "ip",
            "netns",
            "exec",
            ns,
            sys.executable,
            fake_module.__file__,
            str(folder / "spec.json"),
            str(folder),
        ]
        with (folder / "fake.err").open("wb") as errors:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        deadline = time.monotonic() + 60
        while not (folder / "ready").exists():
            assert process.poll() is None, (folder / "fake.err").read_text()
            assert time.monotonic() < deadline, "the fake PIA service did not start within 60 s"
            time.sleep(0.05)
        yield FakeService(ns, host_if, prefix, folder, spec, process)
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _ip("ip", "netns", "del", ns, check=False)  # takes the veth pair with it
        _ip("ip", "link", "del", host_if, check=False)


@pytest.fixture
def run_ws(service: FakeService, tmp_path: Path, write_config):
    """``run_ws(*args, **pia_overrides)``: the installed ws with a ws.toml pointing at the fake."""
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    os.chmod(tmp_path / "pw", 0o600)
    spec = service.spec
    pia: dict[str, Any] = {
        "username": USERNAME,
        "password_file": str(tmp_path / "pw"),
        "ca_file": str(service.folder / "ca.crt"),
        "serverlist_pubkey_file": str(service.folder / "serverlist.pub"),
        "serverlist_url": f"https://{spec.serverlist_host}/vpninfo/servers/v6",
        "token_url": f"https://{spec.token_host}/api/client/v2/token",
        "hosts": {spec.serverlist_host: spec.serverlist_address, spec.token_host: spec.token_address},
        "latency_timeout": 0.5,
        "request_timeout": 5,
    }
    environ = {key: value for key, value in os.environ.items() if not key.startswith("WS_") or key == "WS_CACHE_DIR"}
    environ["WS_PLUGINS"] = "pia"

    def run(*args: str, **overrides: Any) -> subprocess.CompletedProcess:
        command = [str(WS), "--config", str(write_config({**pia, **overrides})), *args]
        return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=120, check=False)

    return run


class ProcScanner(threading.Thread):
    """Reads every process's cmdline and environ while ws runs, looking for the password."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.leaks: list[str] = []
        self.saw_ws = 0

    def run(self) -> None:
        needle = PASSWORD.encode()
        while not self.stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                for name in ("cmdline", "environ"):
                    try:
                        data = (entry / name).read_bytes()
                    except OSError:
                        continue
                    if needle in data:
                        self.leaks.append(f"{entry.name}/{name}")
                    if name == "cmdline" and b"vpn\0renew" in data:
                        self.saw_ws += 1


def test_fresh_connect_from_host_namespace_and_password_stays_secret(service, run_ws) -> None:
    start = len(service.calls())
    service.fault(("token", "slow", 1.5))  # keeps ws running while /proc is scanned
    scanner = ProcScanner()
    scanner.start()
    try:
        result = run_ws("-v", "--log-format", "json", "vpn", "renew", "--no-tunnel", region="auto", port_forward=True)
    finally:
        scanner.stop.set()
        scanner.join()
    assert result.returncode == 0, result.stderr
    assert service.counts(start) == {"serverlist": 1, "token": 1, "addKey": 1, "getSignature": 1, "bindPort": 1}
    assert scanner.saw_ws > 0 and scanner.leaks == []
    calls = service.calls()[start:]
    assert all(PASSWORD not in call["target"] and PASSWORD not in call["host"] for call in calls)
    assert f"password={PASSWORD}" in next(call["body"] for call in calls if call["endpoint"] == "token")
    assert '"pia request"' in result.stderr  # debug logging was on
    token = next(call for call in calls if call["endpoint"] == "addKey")["target"].split("pt=")[1].split("&")[0]
    assert PASSWORD not in result.stdout + result.stderr and token not in result.stdout + result.stderr
    assert result.stdout.startswith("renewed: region swiss") or result.stdout.startswith("renewed: region de_berlin")


def test_port_forward_state_survives_restarts_and_refreshes(service, run_ws) -> None:
    def renew() -> dict[str, Any]:
        result = run_ws("vpn", "renew", "--no-tunnel", "--json", region="swiss", port_forward=True)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    start = len(service.calls())
    renew()
    renew()  # a new ws process: the stored signature is reused, the port bound again
    assert service.counts(start) | {"serverlist": 0} == {
        "serverlist": 0, "token": 1, "addKey": 1, "getSignature": 1, "bindPort": 2
    }  # fmt: skip
    service.fault(("bindPort", "409"))
    renew()
    assert (service.counts(start)["getSignature"], service.counts(start)["bindPort"]) == (2, 4)
    service.fault(("bindPort", "bad_signature"), ("getSignature", "expires_in", 6 * 86400))
    renew()  # refused signature: a new one, which has only six days left
    assert (service.counts(start)["getSignature"], service.counts(start)["bindPort"]) == (3, 6)
    renew()  # fewer than seven days: a new one
    assert (service.counts(start)["getSignature"], service.counts(start)["bindPort"]) == (4, 7)
    renew()  # sixty days: reused
    counts = service.counts(start)
    assert (counts["getSignature"], counts["bindPort"], counts["addKey"]) == (4, 8, 1)
    status = json.loads(run_ws("vpn", "status", "--json", region="swiss", port_forward=True).stdout)
    last_bind = [call for call in service.calls() if call["endpoint"] == "bindPort"][-1]["target"]
    payload = unquote(last_bind.split("payload=")[1].split("&")[0])
    assert status["forwarded_port"] == json.loads(base64.b64decode(payload))["port"] and status["token"] == "***"


def test_untrusted_ca_wrong_cn_and_tampered_list_are_refused(service, run_ws, tmp_path) -> None:
    other = tmp_path / "other-ca.crt"
    other.write_bytes(fake_module.TestCA("another CA").pem)
    untrusted = run_ws("vpn", "renew", "--no-tunnel", ca_file=str(other), region="swiss")
    assert untrusted.returncode == 1
    assert "certificate is not valid for 'serverlist.pia.test' under the configured ca_file" in untrusted.stderr
    start = len(service.calls())
    impostor = run_ws("vpn", "renew", "--no-tunnel", region="impostor_land")
    assert impostor.returncode == 1 and "not valid for 'imp406'" in impostor.stderr, impostor.stderr
    assert service.counts(start)["addKey"] == 0
    service.fault(("serverlist", "tamper"))
    tampered = run_ws("vpn", "renew", "--no-tunnel", region="swiss")
    assert tampered.returncode == 1 and "signature does not verify" in tampered.stderr
    assert "Traceback" not in untrusted.stderr + impostor.stderr + tampered.stderr


@pytest.fixture
def meta_fault(service: FakeService) -> Iterator[Any]:
    """``meta_fault(region, "silent"|"slow")``: the region's meta server stops answering (its address is
    removed in the namespace) or answers a second late (a rule in the namespace drops every other SYN to
    it, so each connect waits for the kernel's 1 s SYN retransmission). This kernel has no netem."""
    undo: list[list[str]] = []

    def apply(region: str, kind: str) -> None:
        meta = {r.id: r.meta[0][0] for r in service.spec.regions}[region]
        if kind == "silent":
            peer = _ip("ip", "-o", "addr", "show", "to", meta, ns=service.ns).stdout.split()[1]
            _ip("ip", "addr", "del", f"{meta}/24", "dev", peer, ns=service.ns)
            undo.append(["ip", "addr", "add", f"{meta}/24", "dev", peer])
        else:
            rule = f"ip daddr {meta} tcp dport 443 tcp flags & (syn | ack) == syn numgen inc mod 2 == 0 drop"
            script = (
                f"table inet wspia_test {{\n chain input {{\n type filter hook input priority 0;\n {rule}\n }}\n}}\n"
            )
            subprocess.run(["ip", "netns", "exec", service.ns, "nft", "-f", "-"], input=script, text=True, check=True)
            undo.append(["nft", "delete", "table", "inet", "wspia_test"])

    yield apply
    for command in undo:
        _ip(*command, ns=service.ns, check=False)


@pytest.mark.parametrize(
    ("region", "kind", "other"), [("swiss", "silent", "de_berlin"), ("de_berlin", "slow", "swiss")]
)
def test_auto_takes_the_region_whose_meta_server_answers_first(
    service, run_ws, meta_fault, region, kind, other
) -> None:
    """Real TCP probes on 443 from the host namespace: auto chooses the other forwarding region, and
    ``ws vpn regions`` lists it first (the latency order itself is also unit-tested in test_regions.py)."""
    meta_fault(region, kind)
    listed = run_ws("vpn", "regions", "--json", latency_timeout=1.8)
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    if kind == "silent":
        assert rows[region]["latency_ms"] is None
    else:
        assert rows[region]["latency_ms"] >= 900  # the retransmitted SYN
    assert 0 < rows[other]["latency_ms"] < 500
    assert rows["gone"]["latency_ms"] is None and rows["gone"]["offline"]
    assert list(rows).index(other) < list(rows).index(region)  # fastest first
    chosen = run_ws(
        "vpn", "renew", "--no-tunnel", "--force", "--json", region="auto", port_forward=True, latency_timeout=1.8
    )
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout)["detail"].startswith(f"region {other},")
