"""What ws would apply for the sandbox network: the nftables script, dnsmasq's configuration and the
/proc parsing behind the cheap checks. The root tier applies all of it to real kernel objects."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from ws.config.model import NetworkConfig
from ws.errors import WsError
from ws.network import bridge, dns, firewall, sandbox

PORTS = (
    firewall.PortBinding("wsi-a", "02:00:00:00:00:0a", ipaddress.IPv4Address("192.168.83.10")),
    firewall.PortBinding("ve-b", "02:00:00:00:00:0b", ipaddress.IPv4Address("192.168.83.11")),
)
SPEC = firewall.FirewallSpec(
    bridge="sandbox-br",
    subnet=ipaddress.IPv4Network("192.168.83.0/24"),
    host_address=ipaddress.IPv4Address("192.168.83.1"),
    upstream="eth0",
    block_lan=True,
    ports=PORTS,
)


def _spec(**changes) -> firewall.FirewallSpec:
    return firewall.FirewallSpec(**{**SPEC.__dict__, **changes})


def test_script_replaces_only_its_own_tables_in_one_transaction() -> None:
    script = firewall.render(SPEC)
    statements = [line for line in script.splitlines() if not line.startswith("\t") and line != "}"]
    assert statements == [
        "table inet ws-sandbox-br {}",
        "delete table inet ws-sandbox-br",
        "table bridge ws-sandbox-br {}",
        "delete table bridge ws-sandbox-br",
        "table inet ws-sandbox-br {",
        "table bridge ws-sandbox-br {",
    ]
    assert "flush" not in script and "ruleset" not in script


def test_block_lan_rules() -> None:
    script = firewall.render(SPEC)
    for rule in [
        'iifname "sandbox-br" ip daddr @lan4 drop',
        'iifname "sandbox-br" ip daddr 192.168.83.1 udp dport 53 accept',
        'iifname "sandbox-br" ip daddr 192.168.83.1 tcp dport 53 accept',
        'iifname "sandbox-br" ct state established,related accept',
        'iifname "sandbox-br" drop',
        'oifname "sandbox-br" drop',
        'ip saddr 192.168.83.0/24 oifname "eth0" masquerade',
    ]:
        assert f"\t\t{rule}\n" in script
    for prefix in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"):
        assert prefix in script
    # the DNS accept rules come before the catch-all drop of the input chain
    assert script.index("udp dport 53 accept") < script.index('iifname "sandbox-br" drop')


def test_host_protection_and_anti_spoofing_do_not_depend_on_block_lan() -> None:
    for block_lan in (True, False):
        script = firewall.render(_spec(block_lan=block_lan))
        input_chain = script[script.index("chain input") : script.index("chain forward")]
        forward_chain = script[script.index("chain forward") : script.index("chain postrouting")]
        for rule in [
            'iifname "sandbox-br" ip saddr != 192.168.83.0/24 drop',
            'iifname "sandbox-br" meta nfproto ipv6 drop',
        ]:
            assert rule in input_chain and rule in forward_chain
        assert 'iifname != { "sandbox-br", "lo" } ip daddr 192.168.83.1 drop' in input_chain
        assert 'iifname "sandbox-br" drop' in input_chain
        assert 'iifname "sandbox-br" oifname != "eth0" drop' in forward_chain
        assert ("@lan4" in script) == block_lan


def test_each_workspace_port_is_bound_to_its_mac_and_address() -> None:
    script = firewall.render(SPEC)
    bridge_table = script[script.index("table bridge ws-sandbox-br {\n") :]
    assert 'iifname vmap { "wsi-a" : jump port0, "ve-b" : jump port1 }' in bridge_table
    port0 = bridge_table[bridge_table.index("chain port0") : bridge_table.index("chain port1")]
    assert port0.splitlines()[1:-1] == [
        "\t\tether saddr != 02:00:00:00:00:0a drop",
        "\t\tarp saddr ether != 02:00:00:00:00:0a drop",
        "\t\tarp saddr ip != 192.168.83.10 drop",
        "\t\tether type arp accept",
        "\t\tip saddr != 192.168.83.10 drop",
        "\t\tether type ip accept",
        "\t\tdrop",
        "\t}",
    ]


def test_guest_to_guest_is_a_choice_off_by_default() -> None:
    off = firewall.render(SPEC)
    assert "\t\tiifname @ports drop\n" in off
    assert 'oifname "sandbox-br" ip daddr' not in off
    on = firewall.render(_spec(guest_to_guest=True))
    assert "iifname @ports drop" not in on
    assert 'iifname "sandbox-br" oifname "sandbox-br" ip daddr 192.168.83.0/24 accept' in on
    assert "chain port0" in on  # still bound: no spoofing either way
    assert not NetworkConfig().guest_to_guest


def test_fail_safe_routing_blocks_private_ranges_and_the_subnet() -> None:
    from ws.network import failsafe

    subnet = ipaddress.IPv4Network("192.168.83.0/24")
    blocked = failsafe.blocked_ranges(subnet, firewall.LAN_V4, block_lan=True, guest_to_guest=False)
    assert ipaddress.IPv4Network("10.0.0.0/8") in blocked and subnet not in blocked  # inside 192.168/16
    assert failsafe.blocked_ranges(subnet, firewall.LAN_V4, block_lan=False, guest_to_guest=False) == [subnet]
    assert failsafe.blocked_ranges(subnet, firewall.LAN_V4, block_lan=False, guest_to_guest=True) == []


def test_public_test_ranges_are_not_treated_as_lan() -> None:
    lan = [ipaddress.ip_network(p) for p in firewall.LAN_V4]
    assert not any(ipaddress.ip_address("203.0.113.1") in net for net in lan)
    assert any(ipaddress.ip_address("10.99.0.1") in net for net in lan)


@pytest.mark.parametrize("name", ['br"x', "br x", "br;x"])
def test_interface_names_that_could_inject_rules_are_refused(name: str) -> None:
    with pytest.raises(WsError, match="cannot be used in firewall rules"):
        firewall.render(_spec(upstream=name))


def test_dnsmasq_config_with_configured_servers(tmp_path: Path) -> None:
    fwd = dns.Forwarder(ipaddress.IPv4Address("192.168.83.1"), (ipaddress.IPv4Address("203.0.113.1"),), tmp_path)
    lines = dns.render(fwd).splitlines()
    for line in [
        "listen-address=192.168.83.1",
        "bind-interfaces",
        "except-interface=lo",
        "stop-dns-rebind",
        "no-resolv",
        "server=203.0.113.1",
        f"pid-file={tmp_path}/dnsmasq.pid",
    ]:
        assert line in lines
    assert not any(line.startswith(("dhcp-range", "interface=")) for line in lines)
    assert dns.upstream_servers(fwd) == ["203.0.113.1"]


def test_dnsmasq_follows_resolv_conf_including_loopback_stubs(tmp_path: Path) -> None:
    fwd = dns.Forwarder(ipaddress.IPv4Address("192.168.83.1"), None, tmp_path)
    assert f"resolv-file={dns.RESOLV_CONF}" in dns.render(fwd).splitlines()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# x\nsearch lan\nnameserver 127.0.0.53\nnameserver 9.9.9.9\noptions edns0\n")
    assert dns.upstream_servers(fwd, resolv) == ["127.0.0.53", "9.9.9.9"]


def test_stale_pid_file_is_not_running(tmp_path: Path) -> None:
    fwd = dns.Forwarder(ipaddress.IPv4Address("192.168.83.1"), None, tmp_path)
    assert dns.running_pid(fwd) is None
    fwd.pid_file.write_text("1\n")  # pid 1 exists but is not our dnsmasq
    assert dns.running_pid(fwd) is None
    fwd.pid_file.write_text("garbage\n")
    assert dns.running_pid(fwd) is None
    assert not dns.is_current(fwd)


def test_listening_reads_proc_net_udp(tmp_path: Path) -> None:
    udp = tmp_path / "udp"
    udp.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        " 6733: 0153A8C0:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 75687\n"
    )
    assert dns.listening(ipaddress.IPv4Address("192.168.83.1"), proc_udp=udp)
    assert not dns.listening(ipaddress.IPv4Address("192.168.83.2"), proc_udp=udp)


def test_default_route_interface_picks_lowest_metric(tmp_path: Path) -> None:
    route = tmp_path / "route"
    header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    route.write_text(
        header
        + "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        + "eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        + "eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    assert bridge.default_route_interface(route) == "eth0"
    route.write_text(header)
    with pytest.raises(WsError, match="no IPv4 default route"):
        bridge.default_route_interface(route)


def test_attachment_points_workspaces_at_the_host_address() -> None:
    net = NetworkConfig(subnet="10.213.0.0/16", host_address="10.213.0.254", bridge="wsbr")
    att = sandbox.attachment(net)
    assert (att.network, att.bridge, att.gateway, att.dns, att.prefixlen) == (
        "sandbox", "wsbr", "10.213.0.254", ("10.213.0.254",), 16,
    )  # fmt: skip
    default = sandbox.attachment(NetworkConfig())
    assert (default.gateway, default.prefixlen) == ("192.168.83.1", 24)


def test_down_removes_the_bridge_before_the_firewall(monkeypatch, tmp_path: Path) -> None:
    """Guests must lose their link before any rule goes (else they briefly reach everything)."""
    import structlog

    order: list[str] = []
    monkeypatch.setattr(sandbox, "_stop_guard", lambda network, state_dir: order.append("guard") or [])
    monkeypatch.setattr(dns, "stop", lambda fwd: order.append("dns") or [])
    monkeypatch.setattr(bridge, "remove", lambda name: order.append("bridge") or [])
    monkeypatch.setattr(firewall, "remove", lambda table: order.append("firewall") or [])
    monkeypatch.setattr(sandbox.failsafe, "remove", lambda name: order.append("routing") or [])
    monkeypatch.setattr(firewall, "table_names", lambda: [])
    sandbox.down(NetworkConfig(), tmp_path, structlog.get_logger(), nm_dir=tmp_path / "nm")
    assert order == ["guard", "dns", "bridge", "firewall", "routing"]
