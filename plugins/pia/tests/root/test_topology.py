"""Root tier: the vpn network's topology on this host (no WireGuard here: the tunnel is the VM tier's).

Real bridge, namespace, veth, nftables and policy routing with unique names. Proves the kill switch does not
depend on a firewall rule: a client on the bridge that points its default route at the host reaches nothing
behind the host, with the host's forwarding on and even with ws's host table deleted (the blackhole policy
route), and the endpoint namespace has no route out at all before a tunnel exists.
"""

from __future__ import annotations

import random
import secrets
import subprocess
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from ws_plugin_pia import netns, rules, topology

pytestmark = pytest.mark.root

NETPROBE = Path(__file__).resolve().parents[4] / "core" / "tests" / "root" / "netprobe.py"


def sh(command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=check, timeout=60)


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[topology.Layout]:
    suffix = secrets.token_hex(3)
    third = random.randint(100, 250)
    made = topology.Layout(
        bridge=f"brv{suffix}",
        subnet=IPv4Network(f"10.{third}.77.0/24"),
        host_address=IPv4Address(f"10.{third}.77.1"),
        endpoint_address=IPv4Address(f"10.{third}.77.2"),
        namespace=f"wsv{suffix}",
        interface="piaw",
        mtu=1420,
    )
    client, outside = f"wsc{suffix}", f"wso{suffix}"
    try:
        yield made
    finally:
        for name in (client, outside):
            sh(f"ip netns del {name}", check=False)
        sh(f"ip link del c{suffix}; ip link del o{suffix}", check=False)
        topology.remove_endpoint(made)
        topology.remove_host(made, tmp_path)


def test_topology_up_is_idempotent_and_down_removes_it(layout, tmp_path) -> None:
    changes = topology.ensure_host(layout, tmp_path) + topology.ensure_endpoint(layout)
    assert any("created bridge" in change for change in changes)
    assert any("blackhole" in change for change in changes)
    assert topology.ensure_host(layout, tmp_path) == [] and topology.ensure_endpoint(layout) == []
    assert Path(f"/proc/sys/net/ipv6/conf/{layout.bridge}/disable_ipv6").read_text().strip() == "1"
    inside = sh(f"ip -n {layout.namespace} -4 addr show lan0").stdout
    assert f"inet {layout.endpoint_address}/24" in inside
    assert sh(f"ip -n {layout.namespace} route show default").stdout.strip() == ""  # no way out yet
    with netns.InNetns(layout.namespace) as inside_ns:
        assert topology.apply_endpoint_rules(layout, inside_ns, None)
        assert topology.apply_endpoint_rules(layout, inside_ns, None) == []
        assert inside_ns.call(lambda: Path("/proc/sys/net/ipv6/conf/all/disable_ipv6").read_text().strip()) == "1"
    assert f"table inet {rules.ENDPOINT_TABLE}" in sh(f"ip netns exec {layout.namespace} nft list tables").stdout
    down = topology.remove_endpoint(layout) + topology.remove_host(layout, tmp_path)
    assert any("deleted network namespace" in change for change in down)
    assert not netns.exists(layout.namespace)
    assert sh(f"ip link show {layout.bridge}", check=False).returncode != 0
    assert f"lookup {layout.route_table}" not in sh("ip rule").stdout


def test_nothing_from_the_bridge_is_routed_even_without_the_host_table(layout, tmp_path) -> None:
    """A hostile client re-points its default route at the host; the host forwards (ip_forward=1) and an
    'outside' namespace behind it would answer: the blackhole policy route alone stops the packets."""
    suffix = layout.namespace[3:]
    client, outside = f"wsc{suffix}", f"wso{suffix}"
    topology.ensure_host(layout, tmp_path)
    topology.ensure_endpoint(layout)
    third = layout.subnet.network_address.packed[1]
    out_host, out_addr = f"10.{third}.78.1", f"10.{third}.78.2"
    client_addr = f"10.{third}.77.10"
    sh(
        f"""set -e
ip netns add {client}; ip netns add {outside}
ip link add c{suffix} type veth peer name eth0 netns {client}
ip link set c{suffix} master {layout.bridge} up
ip -n {client} addr add {client_addr}/24 dev eth0; ip -n {client} link set eth0 up; ip -n {client} link set lo up
ip -n {client} route add default via {layout.host_address}
ip link add o{suffix} type veth peer name eth0 netns {outside}
ip addr add {out_host}/24 dev o{suffix}; ip link set o{suffix} up
ip -n {outside} addr add {out_addr}/24 dev eth0; ip -n {outside} link set eth0 up; ip -n {outside} link set lo up
ip -n {outside} route add default via {out_host}
"""
    )
    forwarding = Path("/proc/sys/net/ipv4/ip_forward")
    before = forwarding.read_text()
    server = subprocess.Popen(["ip", "netns", "exec", outside, "python3", str(NETPROBE), "serve", out_addr, "8080"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert server.stdout.readline().strip() == "ready"
        forwarding.write_text("1\n")

        def from_client() -> str:
            return sh(f"ip netns exec {client} python3 {NETPROBE} tcp {out_addr} 8080").stdout.strip()

        assert sh(f"python3 {NETPROBE} tcp {out_addr} 8080").stdout.strip() == out_host  # the path exists
        assert from_client() == "BLOCKED"
        sh(f"nft delete table inet {rules.host_table(layout.bridge)}")
        assert from_client() == "BLOCKED"  # the topology, not the rule
        # the endpoint's namespace has no route out at all without its tunnel
        assert sh(f"ip netns exec {layout.namespace} python3 {NETPROBE} tcp {out_addr} 8080").stdout.strip() == (
            "BLOCKED"
        )
        restored = topology.ensure_host(layout, tmp_path)
        assert restored == [f"applied nftables table inet {rules.host_table(layout.bridge)}"]
    finally:
        forwarding.write_text(before)
        server.kill()
        server.wait()
