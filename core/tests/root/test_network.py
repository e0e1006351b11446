"""The sandbox network on real kernel objects: ``ws network up/down`` inside a throwaway "host" namespace
with an "internet" namespace behind its upstream veth, a "lan" namespace behind another veth and a
"client" namespace plugged into the bridge like a workspace. No packet leaves these namespaces."""

from __future__ import annotations

import json
import os
import re
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
NAME, NAME_ADDR = "www.example.test", "192.88.99.7"  # public (dnsmasq treats the TEST-NETs as private); never contacted
UPSTREAM_PRIVATE = "10.98.0.1"
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
        "--bind-interfaces", "--no-resolv", "--no-hosts", f"--address=/www.example.test/{NAME_ADDR}",
        f"--address=/rebind.example.test/{LAN_ADDR}",
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
    # an upstream answer pointing into private ranges is dropped (DNS rebinding against the LAN)
    assert topo.client("dns", HOST_ADDR, "rebind.example.test", "udp") == "FAILED"
    # the forwarder serves the bridge only: the LAN routes to the bridge address and gets nothing
    assert topo.exec("l", sys.executable, PROBE, "dns", HOST_ADDR, NAME, "udp").stdout.strip() == "FAILED"

    status = topo.ws_json("status")
    assert status["up"] is True, status
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


def test_block_lan_off_reaches_private_ranges_upstream_only_and_never_the_host(topo: Topology) -> None:
    # a private address behind the upstream interface (a provider's network): what block_lan is about
    topo.exec("i", "ip", "addr", "add", f"{UPSTREAM_PRIVATE}/32", "dev", "eth0")
    sh("ip", "-n", topo.host, "route", "add", UPSTREAM_PRIVATE, "via", INET_ADDR)
    topo.serve("i", UPSTREAM_PRIVATE)
    topo.write_config(block_lan=False)
    topo.ws("up")
    topo.plug_client()
    assert topo.client("tcp", UPSTREAM_PRIVATE, str(PORT)) == UPSTREAM_ADDR
    # host protection does not depend on the LAN setting, and nothing is forwarded to another interface
    assert topo.client("tcp", HOST_ADDR, str(PORT)) == "BLOCKED"
    assert topo.client("tcp", HOST_LAN_ADDR, str(PORT)) == "BLOCKED"
    assert topo.client("tcp", LAN_ADDR, str(PORT)) == "BLOCKED"
    topo.write_config(block_lan=True)
    changes = topo.ws_json("up")["changes"]
    assert changes[0] == "applied nftables tables ws-sandbox-br (masquerade out of up0)"
    assert all("routing rule" in change for change in changes[1:]) and len(changes) > 1
    assert topo.client("tcp", UPSTREAM_PRIVATE, str(PORT)) == "BLOCKED"
    assert topo.client("tcp", INET_ADDR, str(PORT)) == UPSTREAM_ADDR
    topo.ws("down")


def test_a_flushed_ruleset_fails_closed_and_is_restored_within_a_second(topo: Topology) -> None:
    topo.ws("up")
    topo.plug_client()
    listing = _ws_tables(topo)
    guard = _guard_pid(topo)
    os.kill(guard, signal.SIGSTOP)  # first the layers that hold on their own, without the guard
    try:
        topo.nft("flush", "ruleset")
        assert _ws_tables(topo) is None
        assert topo.client("tcp", LAN_ADDR, str(PORT)) == "BLOCKED"  # policy routing: prohibit
        assert topo.client("tcp", "192.168.83.20", str(PORT)) == "BLOCKED"  # no hairpin to another guest
        assert topo.client("tcp", INET_ADDR, str(PORT)) == "BLOCKED"  # no NAT: nothing comes back
        assert _doctor(topo)["sandbox firewall"]["status"] == "fail"
    finally:
        os.kill(guard, signal.SIGCONT)
    _wait_for_tables(topo, listing, within=1.0)
    for _ in range(3):  # and again while the guard runs: each flush is undone within a second
        topo.nft("flush", "ruleset")
        _wait_for_tables(topo, listing, within=1.0)
    assert topo.client("tcp", HOST_ADDR, str(PORT)) == "BLOCKED"
    assert topo.client("tcp", INET_ADDR, str(PORT)) == UPSTREAM_ADDR
    topo.nft("add", "rule", "inet", "ws-sandbox-br", "forward", "accept")  # a manual edit is reverted too
    _wait_for_tables(topo, listing, within=1.0)
    assert topo.ws_json("up")["changes"] == []
    assert _doctor(topo)["sandbox firewall"]["status"] == "ok"
    topo.ws("down")
    assert not alive(guard)


def test_doctor_reports_a_forward_policy_drop(topo: Topology) -> None:
    """What Docker does to iptables' FORWARD chain: forwarded workspace traffic dies there."""
    assert _doctor(topo)["forwarding policy"]["status"] == "ok"
    docker_like = (
        "table ip filter {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy drop;\n\t}\n}\n"
    )
    subprocess.run(["ip", "netns", "exec", topo.host, "nft", "-f", "-"], input=docker_like, text=True, check=True)
    check = _doctor(topo)["forwarding policy"]
    assert check["status"] == "warn" and "policy drop" in check["detail"]


def _doctor(topo: Topology) -> dict[str, dict]:
    if not (topo.tmp / "ws.toml").exists():
        topo.write_config()
    result = topo.exec("h", WS, "--config", str(topo.tmp / "ws.toml"), "doctor", "--json", check=False)
    return {check["name"]: check for check in json.loads(result.stdout)}


def test_the_bridge_never_exists_unmarked(topo: Topology) -> None:
    """A ws killed between creating the bridge and marking it must not leave a bridge later runs refuse:
    every link event naming the bridge (``ip -d monitor``: one block per event) already carries the mark."""
    monitor = topo.start("h", "ip", "-d", "monitor", "link")
    time.sleep(0.2)
    topo.ws("up")
    time.sleep(0.2)
    monitor.terminate()
    blocks = re.split(r"\n(?=\d+: )", monitor.stdout.read())
    named = [block for block in blocks if re.match(rf"\d+: {BRIDGE}:", block)]
    assert named, "ip monitor saw no event for the bridge"
    assert all("alias managed by ws" in block for block in named), named[0]
    topo.ws("down")


def _ws_tables(topo: Topology) -> str | None:
    texts = []
    for family in ("inet", "bridge"):
        result = topo.nft("list", "table", family, "ws-sandbox-br", check=False)
        if result.returncode != 0:
            return None
        texts.append(result.stdout)
    return "".join(texts)


def _wait_for_tables(topo: Topology, listing: str, within: float) -> None:
    start = time.monotonic()
    while _ws_tables(topo) != listing:
        assert time.monotonic() - start < within, f"ws's tables were not restored within {within} s"
        time.sleep(0.02)


def _guard_pid(topo: Topology) -> int:
    record = json.loads((topo.tmp / "state" / "run" / "ws-guard-sandbox-br.json").read_text())
    assert alive(record["pid"])
    return record["pid"]


def test_up_is_a_no_op_when_up_and_converges_after_a_crash(topo: Topology) -> None:
    topo.ws("up")
    topo.plug_client()
    again, noop = timed(topo.ws_json, "up")
    assert again == {"network": "sandbox", "bridge": BRIDGE, "changes": [], "changed": False}

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


def test_pinned_neighbours_survive_a_port_joining_the_bridge(topo: Topology) -> None:
    """A bridge left to itself takes its lowest port's MAC, and the kernel flushes a device's neighbour
    entries, permanent ones included, whenever its MAC changes: a port joining would drop ws's pinned ARP
    entries. ws fixes the bridge's MAC, so the pins stay."""
    topo.ws("up")
    mac = topo.exec("h", "cat", f"/sys/class/net/{BRIDGE}/address").stdout.strip()
    pins = {CLIENT_ADDR: "02:00:00:00:00:10"}
    topo.exec(
        "h", sys.executable, "-c", f"from ws.network import failsafe; failsafe.ensure({BRIDGE!r}, [], True, {pins})"
    )
    sh(
        "ip",
        "-n",
        topo.host,
        "link",
        "add",
        "wstlow",
        "address",
        "00:00:00:00:00:01",
        "type",
        "veth",
        "peer",
        "name",
        "wstlow1",
    )
    sh("ip", "-n", topo.host, "link", "set", "wstlow", "master", BRIDGE, "up")
    assert "PERMANENT" in topo.exec("h", "ip", "neigh", "show", CLIENT_ADDR, "dev", BRIDGE).stdout
    assert topo.exec("h", "cat", f"/sys/class/net/{BRIDGE}/address").stdout.strip() == mac
    assert topo.exec("h", "cat", f"/sys/class/net/{BRIDGE}/addr_assign_type").stdout.strip() == "3"  # set by hand
    topo.ws("down")
