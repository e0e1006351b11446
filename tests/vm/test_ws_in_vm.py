"""ws installed from this checkout inside the test VM, run against the VM's real systemd host.

The network test repeats the root tier's topology (core/tests/root/test_network.py) inside the VM: an
"internet" namespace behind the upstream veth ``wst-up0``, a "lan" namespace behind ``wst-lan0`` and a
client namespace plugged into the bridge like a workspace. It changes host-wide state (forwarding, nftables,
/etc/hosts), so it gets a VM of its own."""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.vm

REPO = Path(__file__).resolve().parents[2]
NETPROBE = REPO / "core" / "tests" / "root" / "netprobe.py"
GUEST_SITE = "/opt/ws/lib/python3.11/site-packages"
CONFIG = "/etc/ws/test.toml"
HOST_ADDR, CLIENT_ADDR = "192.168.83.1", "192.168.83.10"
INET_ADDR, UPSTREAM_ADDR, LAN_ADDR = "203.0.113.1", "203.0.113.2", "10.99.0.1"
NAME, NAME_ADDR = "www.example.test", "192.88.99.7"  # public: dnsmasq (stop-dns-rebind) treats TEST-NETs as private

TOPOLOGY = f"""set -e
for ns in inet lan c; do ip netns add wst-$ns; ip -n wst-$ns link set lo up; done
ip link add wst-up0 type veth peer name eth0 netns wst-inet
ip link add wst-lan0 type veth peer name eth0 netns wst-lan
ip link add wst-cl0 type veth peer name eth0 netns wst-c
ip addr add {UPSTREAM_ADDR}/24 dev wst-up0
ip addr add 10.99.0.2/24 dev wst-lan0
ip link set wst-up0 up; ip link set wst-lan0 up
ip -n wst-inet addr add {INET_ADDR}/24 dev eth0
ip -n wst-lan addr add {LAN_ADDR}/24 dev eth0
ip -n wst-c addr add {CLIENT_ADDR}/24 dev eth0
for ns in inet lan c; do ip -n wst-$ns link set eth0 up; done
ip -n wst-lan route add 192.168.83.0/24 via 10.99.0.2   # the LAN could answer: only ws's firewall is in the way
ip -n wst-c route add default via {HOST_ADDR}
ip netns exec wst-inet dnsmasq --conf-file=/dev/null --listen-address={INET_ADDR} --bind-interfaces \
    --no-resolv --no-hosts --address=/example.test/{NAME_ADDR} --pid-file=/run/wst-dns.pid
for target in "inet {INET_ADDR}" "lan {LAN_ADDR}" "host 0.0.0.0"; do
    set -- $target
    if [ "$1" = host ]; then run=""; else run="ip netns exec wst-$1"; fi
    setsid -f $run python3 /root/netprobe.py serve "$2" 8080 >/dev/null 2>&1
done
"""


def ws(vm, *args: str, timeout: float = 180) -> str:
    return vm.succeed(f"ws --config {CONFIG} " + " ".join(args), timeout)


def client(vm, *args: str) -> str:
    return vm.succeed("ip netns exec wst-c python3 /root/netprobe.py " + " ".join(args)).strip()


def test_ws_in_the_vm_is_the_code_under_test(vm) -> None:
    assert vm.succeed("ws --version").strip() == f"ws, version {version('ws-core')}"
    guest_file = vm.succeed(f"sha256sum {GUEST_SITE}/ws/cli/main.py").split()[0]
    assert guest_file == hashlib.sha256((REPO / "core/src/ws/cli/main.py").read_bytes()).hexdigest()
    assert vm.succeed("command -v ws").strip() == "/usr/local/bin/ws"


def test_ws_doctor_runs_on_the_vm_host(vm) -> None:
    result = vm.execute("ws doctor --json", 180)
    assert result.status in (0, 1), f"ws doctor crashed ({result.status}):\n{result.stderr}"
    checks = {check["name"]: check for check in json.loads(result.stdout)}
    assert checks["python"]["status"] == "ok" and checks["python"]["detail"].startswith("3.11")
    assert checks["state directory"]["status"] == "ok"
    # what the VM lacks (e.g. an Incus server) must come with a fix, and the exit status must say so
    failing = [check for check in checks.values() if check["status"] not in ("ok", "warn")]
    assert all(check["fix"] for check in failing), failing
    assert result.status == (1 if failing else 0)


def test_network_up_and_down_on_a_real_systemd_host(fresh_vm) -> None:
    vm = fresh_vm
    vm.write_file("/root/netprobe.py", NETPROBE.read_text())
    vm.write_file(
        CONFIG,
        f'state_dir = "/var/lib/ws-test"\n[network]\nupstream = "wst-up0"\ndns_upstream = ["{INET_ADDR}"]\n',
    )
    vm.succeed(TOPOLOGY)
    vm.wait_until_succeeds(f"ip netns exec wst-inet python3 /root/netprobe.py tcp {INET_ADDR} 8080", 60)
    forwarding_before = vm.succeed("cat /proc/sys/net/ipv4/ip_forward").strip()
    hosts_before = vm.succeed("cat /etc/hosts")

    [up] = json.loads(ws(vm, "network", "up", "--json"))
    assert up["changed"] and any("created bridge" in change for change in up["changes"])
    vm.succeed("ip link set wst-cl0 master sandbox-br up")

    assert client(vm, "tcp", INET_ADDR, "8080") == UPSTREAM_ADDR  # out through the NAT
    assert client(vm, "tcp", LAN_ADDR, "8080") == "BLOCKED"  # private ranges behind the host
    assert client(vm, "tcp", HOST_ADDR, "8080") == "BLOCKED"  # the host's own services
    assert client(vm, "dns", HOST_ADDR, NAME, "udp") == NAME_ADDR  # names through the forwarder
    assert client(vm, "dns", HOST_ADDR, NAME, "tcp") == NAME_ADDR
    [sandbox] = json.loads(ws(vm, "network", "status", "--json"))
    status = sandbox["extra"]
    assert sandbox["up"] is True and status["up"] is True and status["firewall"]["current"] and status["dns"]["running"]
    assert status["upstream"]["interface"] == "wst-up0"
    assert json.loads(ws(vm, "network", "up", "--json"))[0]["changes"] == []

    [down] = json.loads(ws(vm, "network", "down", "--json"))
    assert any("deleted bridge" in change for change in down["changes"])
    vm.fail("ip link show sandbox-br")
    assert "ws-sandbox-br" not in vm.succeed("nft list tables")
    assert vm.succeed("cat /proc/sys/net/ipv4/ip_forward").strip() == forwarding_before
    assert vm.succeed("cat /etc/hosts") == hosts_before
    assert client(vm, "tcp", INET_ADDR, "8080") == "BLOCKED"  # no bridge, no way out
