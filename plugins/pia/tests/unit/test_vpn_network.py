"""The vpn network's pure parts: nftables scripts (checked by ``nft --check`` when nft is there), the tunnel's
configuration object, the DNS forwarder's configuration, the guest's wait files, the network record."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from types import SimpleNamespace

import pytest
from pydantic import ValidationError
from ws_plugin_pia import guest, network, rules, tunnel
from ws_plugin_pia.session import Session
from ws_plugin_pia.settings import PiaSettings

SUBNET, ENDPOINT = IPv4Network("10.100.0.0/24"), IPv4Address("10.100.0.2")
KEY = "eCtXsJZ27+4PbhDkHnB923tkUn2Gj59wZw5wFA75MnU="


def _session(**changes) -> Session:
    values = dict(region="swiss", server_cn="zurich401", server_ip="203.0.113.11", server_port=1337,
                  server_key="YDvkFeX3M9mN0wD2Xgq1iEiwS+AE7ua6kF7JYQCGq0k=", server_vip="10.0.0.111",
                  peer_ip="10.20.30.40", peer_pubkey=KEY, dns_servers=("10.0.0.243", "10.0.0.242"),
                  public_key=KEY, created_at=datetime.now(UTC))  # fmt: skip
    return Session(**{**values, **changes})


def _nft_check(script: str) -> None:
    """nft parses the script (``--check`` applies nothing) where nft is installed and may run."""
    if shutil.which("nft") is None:
        return
    result = subprocess.run(["nft", "--check", "-f", "-"], input=script, text=True, capture_output=True, check=False)
    if "Operation not permitted" in result.stderr:
        return
    assert result.returncode == 0, result.stderr


def test_host_table_drops_everything_from_the_bridge_and_masquerades_nothing() -> None:
    script = rules.render_host("br-vpn")
    assert script.startswith("table inet ws-pia-br-vpn {}\ndelete table inet ws-pia-br-vpn\n")
    assert '\t\tiifname "br-vpn" oifname != "br-vpn" drop' in script
    assert '\t\tiifname "br-vpn" meta nfproto ipv6 drop' in script
    assert '\t\tiifname "br-vpn" ct state established,related accept\n\t\tiifname "br-vpn" drop' in script
    assert "masquerade" not in script and "nat" not in script
    _nft_check(script)


def test_endpoint_table_without_a_forwarded_port() -> None:
    script = rules.render_endpoint("lan0", "piaw", SUBNET, ENDPOINT)
    assert '\t\toifname "piaw" masquerade' in script
    assert "type filter hook forward priority filter; policy drop;" in script
    assert '\t\tiifname "lan0" oifname "piaw" ip saddr 10.100.0.0/24 accept' in script
    assert '\t\tiifname "piaw" oifname "lan0" ct state established,related accept' in script
    assert '\t\toifname "piaw" tcp flags syn / syn,rst tcp option maxseg size set rt mtu' in script
    assert "ip daddr 10.100.0.2 udp dport 53 accept" in script and "dnat" not in script
    assert script.count("meta nfproto ipv6 drop") == 3  # input, forward, output
    _nft_check(script)


@pytest.mark.parametrize(("protocols", "count"), [(("tcp",), 1), (("tcp", "udp"), 2)])
def test_endpoint_table_dnats_the_forwarded_port(protocols, count) -> None:
    dnat = rules.Dnat(port=41234, target=IPv4Address("10.100.0.10"), target_port=6881, protocols=protocols)
    script = rules.render_endpoint("lan0", "piaw", SUBNET, ENDPOINT, dnat)
    assert script.count("dnat ip to 10.100.0.10:6881") == count
    assert '\t\tiifname "piaw" tcp dport 41234 dnat ip to 10.100.0.10:6881' in script
    assert "ip daddr 10.100.0.10 tcp dport 6881 ct status dnat accept" in script
    _nft_check(script)


def test_interface_names_that_could_inject_rules_are_refused() -> None:
    from ws.errors import WsError

    with pytest.raises(WsError, match="cannot be used in firewall rules"):
        rules.render_host('br" accept; #')


def test_tunnel_config_from_a_session_hides_the_private_key() -> None:
    config = tunnel.config_for(_session(), KEY, 1420)
    assert config.peer() == {
        "public_key": "YDvkFeX3M9mN0wD2Xgq1iEiwS+AE7ua6kF7JYQCGq0k=", "endpoint_addr": "203.0.113.11",
        "endpoint_port": 1337, "persistent_keepalive": 25, "allowed_ips": ["0.0.0.0/0"], "replace_allowed_ips": True,
    }  # fmt: skip
    assert config.address == "10.20.30.40" and config.mtu == 1420
    assert KEY not in repr(config) and KEY not in str(config)


def test_dnat_only_for_the_configured_workspace(make_settings) -> None:
    settings = make_settings(
        port_forward=True, receive_forwarded_port={"workspace": "svc", "protocol": "both", "port": 6881}
    )
    assert network.dnat_for(settings, None, "10.100.0.10") is None
    dnat = network.dnat_for(settings, 40000, "10.100.0.10")
    assert dnat == rules.Dnat(40000, IPv4Address("10.100.0.10"), 6881, ("tcp", "udp"))
    same = make_settings(port_forward=True, receive_forwarded_port={"workspace": "svc", "protocol": "udp"})
    assert network.dnat_for(same, 40000, "10.100.0.10").target_port == 40000
    assert network.dnat_for(make_settings(), 40000, "10.100.0.10") is None


def test_dns_forwarder_of_the_endpoint_asks_only_the_session_servers(tmp_path) -> None:
    from ws.network import dns

    forwarder = dns.Forwarder(ENDPOINT, tuple(IPv4Address(s) for s in _session().dns_servers), tmp_path)
    text = dns.render(forwarder)
    assert "listen-address=10.100.0.2" in text and "bind-interfaces" in text and "no-resolv" in text
    assert "server=10.0.0.243\nserver=10.0.0.242" in text and "resolv-file" not in text


def test_guest_waits_for_the_tunnel_before_sshd() -> None:
    script, drop_in = guest.wait_files("web.pia.test", "10.100.0.2")
    assert script.path == guest.WAIT_SCRIPT and script.mode == 0o755
    assert b"dig +short +time=2 +tries=1 @10.100.0.2 web.pia.test A" in script.content
    assert drop_in.path == "/etc/systemd/system/ssh.service.d/ws-vpn-wait.conf"
    assert f"ExecStartPre={guest.WAIT_SCRIPT}".encode() in drop_in.content
    assert b"TimeoutStartSec=infinity" in drop_in.content


def test_network_record_has_no_masquerade_and_the_endpoint_as_gateway(make_settings) -> None:
    core = SimpleNamespace(workspaces={"svc": SimpleNamespace(network="vpn")})
    record = network.define("vpn", core, {"pia": make_settings()})
    assert (record.bridge, record.subnet, record.host_address) == ("br-vpn", "10.100.0.0/24", "10.100.0.1")
    assert record.gateway == "10.100.0.2" and record.dns == ("10.100.0.2",)
    assert record.masquerade is False and record.mtu == 1420
    assert record.agent is not None and record.agent.command == ("vpn", "run", "vpn")
    assert record.agent.watchdog_sec == network.AGENT_WATCHDOG_SEC
    assert network.define("tunnel", SimpleNamespace(workspaces={}), {"pia": make_settings()}).agent.command == (
        "vpn",
        "run",
        "tunnel",
    ), "the agent is named after the network it keeps, not a fixed name"
    with pytest.raises(ValueError, match="not configured"):
        network.define("vpn", core, {"pia": PiaSettings()})


def test_the_forwarded_port_goes_to_a_workspace_on_the_vpn(make_settings) -> None:
    settings = make_settings(port_forward=True, receive_forwarded_port={"workspace": "web"})
    core = SimpleNamespace(workspaces={"web": SimpleNamespace(network="sandbox")})
    with pytest.raises(ValueError, match="'web' is not a workspace with network = \"vpn\""):
        network.define("vpn", core, {"pia": settings})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoint_address": "10.100.1.2"}, "is not a host address of subnet 10.100.0.0/24"),
        ({"host_address": "10.100.0.2"}, "must differ"),
        ({"receive_forwarded_port": {"workspace": "svc"}}, "needs port_forward = true"),
        ({"interface": "a-name-far-too-long"}, "not a usable interface name"),
        ({"mtu": 9000}, "less than or equal to 1500"),
    ],
)
def test_network_keys_are_checked(make_settings, changes, message) -> None:
    with pytest.raises(ValidationError, match=message):
        make_settings(**changes)


def test_notify_sends_one_datagram_to_the_notify_socket(tmp_path, monkeypatch) -> None:
    import socket

    from ws_plugin_pia.agent import notify

    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        notify("READY=1")
        assert listener.recv(64) == b"READY=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    notify("WATCHDOG=1")  # without systemd: nothing to do, no error


def test_the_agent_pings_the_watchdog_while_it_waits(tmp_path, monkeypatch) -> None:
    """A back-off longer than the watchdog interval must not get the agent killed: while waiting between
    rounds it pings every half interval systemd gave it (here 0.2 s: pings every 0.1 s during 0.45 s)."""
    import contextlib
    import os
    import socket
    import threading

    from ws_plugin_pia.agent import Agent, watchdog_interval

    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(0)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", "200000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        assert watchdog_interval() == 0.1
        agent = Agent.__new__(Agent)
        agent.stop = threading.Event()
        agent.wait(0.45)
        pings = []
        with contextlib.suppress(BlockingIOError):
            while True:
                pings.append(listener.recv(64))
    assert set(pings) == {b"WATCHDOG=1"} and 4 <= len(pings) <= 7, pings
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval() is None, "a watchdog set for another process (our parent) is not ours"
