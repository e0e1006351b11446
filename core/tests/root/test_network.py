"""The sandbox network on real kernel objects: ``ws network up/down`` inside a throwaway "host" namespace
with an "internet" namespace behind its upstream veth, a "lan" namespace behind another veth and a
"client" namespace plugged into the bridge like a workspace. No packet leaves these namespaces."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

PROBE = str(Path(__file__).with_name("netprobe.py"))
WS = str(Path(sys.executable).with_name("ws"))
BRIDGE = "sandbox-br"
HOST_ADDR, CLIENT_ADDR = "192.168.83.1", "192.168.83.10"
INET_ADDR, UPSTREAM_ADDR, LAN_ADDR, HOST_LAN_ADDR = "203.0.113.1", "203.0.113.2", "10.99.0.1", "10.99.0.2"
NAME, NAME_ADDR = "www.example.test", "203.0.113.7"
PORT = 8080


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}")
    return result


@dataclass
class Topology:
    tmp: Path
    tag: str = field(default_factory=lambda: f"wst-{secrets.token_hex(3)}")
    procs: list[subprocess.Popen] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"{self.tag}-{role}"

    @property
    def host(self) -> str:
        return self.ns("h")

    def exec(self, role: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.ns(role), *argv, check=check)

    def write_config(self, **network: object) -> Path:
        config = self.tmp / "ws.toml"
        lines = [f'state_dir = "{self.tmp / "state"}"', "[network]", f'dns_upstream = ["{INET_ADDR}"]']
        lines += [f"{key} = {json.dumps(value)}" for key, value in network.items()]
        config.write_text("\n".join(lines) + "\n")
        return config

    def ws(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        if not (self.tmp / "ws.toml").exists():
            self.write_config()
        argv = [WS, "--config", str(self.tmp / "ws.toml"), "network", *args]
        return self.exec("h", *argv, check=check)

    def ws_json(self, *args: str) -> dict:
        """The sandbox's entry of ``ws network ... --json`` (one per network; status details in ``extra``)."""
        [sandbox] = json.loads(self.ws(*args, "--json", check=args[0] != "status").stdout)
        return sandbox.get("extra", sandbox)

    def start(self, role: str, *argv: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(role), *argv], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.procs.append(proc)
        return proc

    def serve(self, role: str, address: str) -> None:
        proc = self.start(role, sys.executable, PROBE, "serve", address, str(PORT))
        assert proc.stdout.readline().strip() == "ready"

    def client(self, *args: str) -> str:
        return self.exec("c", sys.executable, PROBE, *args).stdout.strip()

    def plug_client(self) -> None:
        sh("ip", "-n", self.host, "link", "set", "cl0", "master", BRIDGE, "up")

    def nft(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.exec("h", "nft", *args, check=check)


def build(topo: Topology) -> None:
    h = topo.host
    for role in "hilc":
        sh("ip", "netns", "add", topo.ns(role))
        sh("ip", "-n", topo.ns(role), "link", "set", "lo", "up")
    for host_end, role, host_addr, peer_addr in [
        ("up0", "i", UPSTREAM_ADDR, INET_ADDR),
        ("lan0", "l", HOST_LAN_ADDR, LAN_ADDR),
    ]:
        sh("ip", "-n", h, "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", topo.ns(role))
        sh("ip", "-n", h, "addr", "add", f"{host_addr}/24", "dev", host_end)
        sh("ip", "-n", h, "link", "set", host_end, "up")
        sh("ip", "-n", topo.ns(role), "addr", "add", f"{peer_addr}/24", "dev", "eth0")
        sh("ip", "-n", topo.ns(role), "link", "set", "eth0", "up")
    sh("ip", "-n", h, "route", "add", "default", "via", INET_ADDR)
    # the LAN could answer the sandbox subnet: only ws's firewall stands between them
    sh("ip", "-n", topo.ns("l"), "route", "add", "192.168.83.0/24", "via", HOST_LAN_ADDR)
    sh("ip", "-n", h, "link", "add", "cl0", "type", "veth", "peer", "name", "eth0", "netns", topo.ns("c"))
    sh("ip", "-n", topo.ns("c"), "addr", "add", f"{CLIENT_ADDR}/24", "dev", "eth0")
    sh("ip", "-n", topo.ns("c"), "link", "set", "eth0", "up")
    sh("ip", "-n", topo.ns("c"), "route", "add", "default", "via", HOST_ADDR)
    # `ip netns exec` bind-mounts these over /etc/hosts (and /etc/NetworkManager): the real ones stay untouched
    etc = Path("/etc/netns") / h
    etc.mkdir(parents=True)
    (etc / "hosts").write_text("127.0.0.1 localhost\n")
    if Path("/etc/NetworkManager").is_dir():
        (etc / "NetworkManager").mkdir()
    if shutil.which("dnsmasq") is None:
        pytest.fail("dnsmasq is missing: apt-get install dnsmasq-base", pytrace=False)
    upstream_dns = topo.start(
        "i", "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", f"--listen-address={INET_ADDR}",
        "--bind-interfaces", "--no-resolv", "--no-hosts", f"--address=/example.test/{NAME_ADDR}",
        f"--pid-file={topo.tmp / 'upstream-dns.pid'}",
    )  # fmt: skip
    topo.serve("i", INET_ADDR)
    topo.serve("l", LAN_ADDR)
    topo.serve("h", "0.0.0.0")
    deadline = time.monotonic() + 5
    while topo.exec("i", sys.executable, PROBE, "dns", INET_ADDR, NAME, "udp").stdout.strip() != NAME_ADDR:
        assert upstream_dns.poll() is None and time.monotonic() < deadline, "the upstream test DNS did not start"
        time.sleep(0.1)


def teardown(topo: Topology) -> None:
    for proc in topo.procs:
        proc.kill()
        proc.wait()
    for role in "hilc":
        ns = topo.ns(role)
        pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
        for pid in pids:  # e.g. ws's dnsmasq when a test failed before `down`
            os.kill(int(pid), signal.SIGKILL)
        sh("ip", "netns", "del", ns, check=False)
    shutil.rmtree(Path("/etc/netns") / topo.host, ignore_errors=True)


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[Topology]:
    if shutil.which("nft") is None:
        pytest.fail("nft is missing: apt-get install nftables", pytrace=False)
    topology = Topology(tmp=tmp_path)
    try:
        build(topology)
        yield topology
    finally:
        teardown(topology)


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for init to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def timed(function, *args):
    start = time.monotonic()
    result = function(*args)
    return result, time.monotonic() - start


def test_up_gives_nat_dns_and_lan_isolation_and_down_removes_exactly_that(topo: Topology) -> None:
    other = "table inet wstest_other {\n\tchain c {\n\t\ttcp dport 9 counter drop\n\t}\n}\n"
    subprocess.run(["ip", "netns", "exec", topo.host, "nft", "-f", "-"], input=other, text=True, check=True)
    other_before = topo.nft("list", "table", "inet", "wstest_other").stdout
    # A new namespace inherits the host's forwarding setting (on wherever Incus or ws run); start from off
    # so the test sees ws turn it on and, at down, off again.
    topo.exec("h", "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")

    up, cold = timed(topo.ws_json, "up")
    assert up["changed"] and any("created bridge" in c for c in up["changes"])
    topo.plug_client()

    # out through the NAT: the internet sees the upstream address, not the workspace's
    assert topo.client("tcp", INET_ADDR, str(PORT)) == UPSTREAM_ADDR
    # private ranges behind the host, and the host's own services, are out of reach
    assert topo.client("tcp", LAN_ADDR, str(PORT)) == "BLOCKED"
    assert topo.client("tcp", HOST_ADDR, str(PORT)) == "BLOCKED"
    assert topo.client("tcp", HOST_LAN_ADDR, str(PORT)) == "BLOCKED"
    # names resolve through the forwarder on the bridge address, over UDP and TCP
    assert topo.client("dns", HOST_ADDR, NAME, "udp") == NAME_ADDR
    assert topo.client("dns", HOST_ADDR, NAME, "tcp") == NAME_ADDR

    status = topo.ws_json("status")
    assert status["up"] is True
    assert status["bridge"] == {
        "name": BRIDGE, "exists": True, "is_bridge": True, "owned_by_ws": True, "state_dir": str(topo.tmp / "state"),
        "up": True, "addresses": [f"{HOST_ADDR}/24"],
    }  # fmt: skip
    assert status["forwarding"] is True
    assert status["firewall"]["present"] and status["firewall"]["current"] and status["firewall"]["rules"] >= 8
    assert status["dns"]["running"] and status["dns"]["listening"] and status["dns"]["upstream_servers"] == [INET_ADDR]
    assert status["upstream"] == {"interface": "up0", "source": "default route", "error": None}
    # the forwarder listens on the bridge address only (not on loopback, not on the wildcard)
    dns_sockets = {
        line.split()[1].split(":")[0]
        for table in ("/proc/net/udp", "/proc/net/tcp")
        for line in topo.exec("h", "cat", table).stdout.splitlines()[1:]
        if line.split()[1].endswith(":0035")
    }
    assert dns_sockets == {"0153A8C0"}
    dnsmasq_pid = status["dns"]["pid"]

    down, down_time = timed(topo.ws_json, "down")
    assert any("deleted bridge" in c for c in down["changes"])
    links = {link["ifname"] for link in json.loads(sh("ip", "-n", topo.host, "-j", "link").stdout)}
    assert links == {"lo", "up0", "lan0", "cl0"}
    tables = topo.nft("list", "tables").stdout.split("\n")
    assert [t for t in tables if t] == ["table inet wstest_other"]
    assert topo.nft("list", "table", "inet", "wstest_other").stdout == other_before
    assert not alive(dnsmasq_pid)
    in_host_ns = {int(pid) for pid in sh("ip", "netns", "pids", topo.host).stdout.split()}
    assert in_host_ns <= {proc.pid for proc in topo.procs}, "only the test's own listener may be left"
    assert topo.exec("h", "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "0"
    assert not (topo.tmp / "state" / "network").exists()
    assert topo.ws_json("down")["changes"] == []
    print(f"\nnetwork up (cold, CLI): {cold:.3f} s; network down (CLI): {down_time:.3f} s")


def test_block_lan_off_reaches_the_lan_and_turning_it_on_converges(topo: Topology) -> None:
    topo.write_config(block_lan=False)
    topo.ws("up")
    topo.plug_client()
    # control for the test above: without block_lan the same LAN address answers (no NAT towards it)
    assert topo.client("tcp", LAN_ADDR, str(PORT)) == CLIENT_ADDR
    assert topo.client("tcp", HOST_ADDR, str(PORT)) == CLIENT_ADDR
    topo.write_config(block_lan=True)
    changes = topo.ws_json("up")["changes"]
    assert changes == ["applied nftables table inet ws-sandbox-br (masquerade out of up0)"]
    assert topo.client("tcp", LAN_ADDR, str(PORT)) == "BLOCKED"
    assert topo.client("tcp", INET_ADDR, str(PORT)) == UPSTREAM_ADDR
    topo.ws("down")


def test_up_is_a_no_op_when_up_and_converges_after_a_crash(topo: Topology) -> None:
    topo.ws("up")
    topo.plug_client()
    again, noop = timed(topo.ws_json, "up")
    assert again == {"network": "sandbox", "bridge": BRIDGE, "changes": [], "changed": False}

    topo.nft("delete", "table", "inet", "ws-sandbox-br")
    assert topo.ws_json("up")["changes"] == ["applied nftables table inet ws-sandbox-br (masquerade out of up0)"]
    assert topo.client("tcp", INET_ADDR, str(PORT)) == UPSTREAM_ADDR

    topo.nft("add", "rule", "inet", "ws-sandbox-br", "forward", "accept")  # a manual edit is reverted
    assert topo.ws_json("up")["changes"] == ["applied nftables table inet ws-sandbox-br (masquerade out of up0)"]

    pid = topo.ws_json("status")["dns"]["pid"]
    os.kill(pid, signal.SIGKILL)  # leaves a stale pid file behind
    changes = topo.ws_json("up")["changes"]
    assert len(changes) == 1 and changes[0].startswith("started DNS forwarder")
    assert topo.client("dns", HOST_ADDR, NAME, "udp") == NAME_ADDR

    sh("ip", "-n", topo.host, "link", "del", BRIDGE)
    changes = topo.ws_json("up")["changes"]
    assert changes[0] == f"created bridge {BRIDGE}" and any("stopped DNS forwarder" in c for c in changes)
    topo.plug_client()
    assert topo.client("dns", HOST_ADDR, NAME, "udp") == NAME_ADDR
    assert topo.ws_json("up")["changes"] == []
    topo.ws("down")
    print(f"\nnetwork up (no-op, CLI): {noop:.3f} s")


def test_an_interface_ws_did_not_create_is_never_taken_over(topo: Topology) -> None:
    sh("ip", "-n", topo.host, "link", "add", BRIDGE, "type", "bridge")
    result = topo.ws("up", check=False)
    assert result.returncode == 1 and "was not created by ws" in result.stderr
    assert topo.nft("list", "tables").stdout == ""
    topo.ws("down")
    assert sh("ip", "-n", topo.host, "link", "show", BRIDGE, check=False).returncode == 0


def test_a_second_configuration_is_told_which_state_directory_owns_the_bridge(topo: Topology) -> None:
    """Two configurations (two state directories) on one bridge: the second one's ``up`` and ``down`` name
    the first one's state directory and change nothing; another subnet-sharing bridge is refused too."""
    first = topo.ws("up")
    assert first.stdout.startswith(f"sandbox network on {BRIDGE} is up (") and "  created bridge" in first.stdout
    assert first.stderr == "", "off a terminal the summary is printed once, without log lines"
    before = topo.ws_json("status")
    first_state = topo.tmp / "state"
    second = topo.tmp / "second.toml"
    second_state = topo.tmp / "second-state"
    second.write_text(f'state_dir = "{second_state}"\n[network]\ndns_upstream = ["{INET_ADDR}"]\n')

    def second_ws(*args: str) -> subprocess.CompletedProcess:
        return topo.exec("h", WS, "--config", str(second), "network", *args, check=False)

    for command in ("up", "down"):
        result = second_ws(command)
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"bridge {BRIDGE} belongs to another ws configuration, the one with state directory {first_state}" in (
            result.stderr
        )
        assert "Address already in use" not in result.stderr and "Traceback" not in result.stderr
    assert topo.ws_json("status") == before, "the first configuration's network is untouched"
    assert not (second_state / "network").exists()

    second.write_text(second.read_text() + 'bridge = "wst-other-br"\n')
    result = second_ws("up")
    assert result.returncode == 1
    assert "subnet 192.168.83.0/24 overlaps 192.168.83.1/24 on interface sandbox-br" in result.stderr
    assert f"state directory {first_state}" in result.stderr
    assert sh("ip", "-n", topo.host, "link", "show", "wst-other-br", check=False).returncode != 0
    assert not (second_state / "network").exists(), "refused before anything was made"

    topo.ws("down")
    assert second_ws("up").returncode == 0, "once the first configuration is down the bridge is free"
    assert second_ws("down").returncode == 0


def test_a_bridge_left_by_a_state_directory_that_is_gone_is_taken_over(topo: Topology) -> None:
    topo.ws("up")
    os.kill(topo.ws_json("status")["dns"]["pid"], signal.SIGKILL)  # e.g. a crash, then the folder was deleted
    shutil.rmtree(topo.tmp / "state" / "network")
    config = topo.write_config()  # same file, another state directory
    config.write_text(config.read_text().replace(str(topo.tmp / "state"), str(topo.tmp / "state2")))
    changes = topo.ws_json("up")["changes"]
    assert f"took over bridge {BRIDGE} from {topo.tmp / 'state'} (that state directory has no network)" in changes
    assert topo.ws_json("status")["bridge"]["state_dir"] == str(topo.tmp / "state2")
    topo.ws("down")
