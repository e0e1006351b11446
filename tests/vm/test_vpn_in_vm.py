"""The ``vpn`` network in the test VM, whose kernel has WireGuard: tunnel, agent, leak scenarios, verify, units.

One VM boot for the whole module and one nspawn service workspace (``svc``, ``network = "vpn"``, ws's image
shared from the host) booted once: both cost minutes under TCG, so the scenarios repair what they broke instead
of starting afresh. The world (``ws_testing.pia_world``): the VM's root namespace is ws's host; behind its
uplink, a fake PIA with a real WireGuard peer, and a resolver and web endpoint reachable only through the
tunnel. Every leak scenario counts, at the uplink's ingress inside the world, packets from the VPN subnet,
packets to the tunnel-only addresses or the outside resolver, and every packet that is neither WireGuard nor
the agent's API calls: all must stay 0. The workspace's attempts run in its own network namespace (nsenter:
the namespace root in the guest controls, with the VM's probe program, so the guest needs no tools).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ws_testing.pia_world import (
    CONFIG,
    ENDPOINT,
    HOST_ADDR,
    IN_SVC,
    IN_WORLD,
    INNER_PORT,
    STATE,
    SVC,
    SVC_ADDR,
    SVC_INTERFACE,
    WEB,
    WEB_NAME,
    WORLD,
    assert_no_leak,
    counters,
    probe,
    reset_counters,
    setup,
    try_out,
    tunnel_works,
    ws,
)

pytestmark = [pytest.mark.vm, pytest.mark.timeout(3600)]  # the first test pays for the VM and container boots

NETPROBE = Path(__file__).resolve().parents[2] / "core" / "tests" / "root" / "netprobe.py"
AGENT_UNIT = "ws-agent-vpn.service"


def session(vm) -> dict:
    """The stored PIA session (public key, peer address), read without starting ws (slow under TCG)."""
    return json.loads(vm.succeed(f"cat {STATE}/pia/session.json"))


def serve_in_svc(vm) -> None:
    """The listener the forwarded port reaches, in the service workspace's network namespace."""
    vm.succeed(f"setsid -f {IN_SVC} python3 /root/netprobe.py serve {SVC_ADDR} {INNER_PORT} >/dev/null 2>&1")
    vm.wait_until_succeeds(f"python3 /root/netprobe.py tcp {SVC_ADDR} {INNER_PORT} | grep -q {HOST_ADDR}", 60)


DIAGNOSIS = (
    f"ws --config {CONFIG} vpn status --json",
    f"journalctl -u {AGENT_UNIT} -n 60 --no-pager -o cat",
    "ip -n ws-vpn -4 addr; ip -n ws-vpn -4 route; ip netns exec ws-vpn wg show",
    f"ip netns exec {WORLD} wg show",
    "tail -n 20 /root/fake-pia.log",
)
"""What says why the tunnel is not up: the agent's report and journal, the namespace, both WireGuard ends."""


def diagnosis(vm) -> str:
    return vm.execute("; echo ---; ".join(f"{{ {command}; }} 2>&1" for command in DIAGNOSIS), 300).stdout


@pytest.fixture(scope="module")
def vpn_vm(vm_image, vm_code_share, vm_accel, tmp_path_factory) -> Iterator:
    """One VM for every test of this module: the world, ws's vpn network up, the service workspace running."""
    from ws_testing.pytest_plugin import _booted
    from ws_testing.ws_image import share_ws_image, unshare_ws_images

    booted = _booted("vpn", vm_image, vm_code_share, vm_accel, tmp_path_factory)
    vm = next(booted)
    try:
        try:
            setup(vm, NETPROBE)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- fake PIA ---\n{vm.execute('cat /root/fake-pia.log').stdout}") from None
        share_ws_image(vm, STATE)
        started = time.monotonic()
        up = json.loads(ws(vm, "network", "up", "vpn", "--json", timeout=600))
        assert up[0]["changed"] and any("started the vpn agent (systemd" in c for c in up[0]["changes"]), up
        # the workspace's sshd waits for the tunnel (ws-vpn-wait), so `ws up` returns once it has its way out
        try:
            ws(vm, "up", SVC, timeout=1800)
        except Exception as error:
            raise AssertionError(f"{error}\n--- diagnosis ---\n{diagnosis(vm)}") from None
        print(f"ws network up vpn + ws up {SVC} (nspawn, TCG): {time.monotonic() - started:.0f} s")
        serve_in_svc(vm)
        yield vm
    finally:
        unshare_ws_images(vm)
        with contextlib.suppress(StopIteration):
            next(booted)


def test_full_flow_through_the_tunnel(vpn_vm) -> None:
    vm = vpn_vm
    reset_counters(vm)
    tunnel_works(vm)
    # the web endpoint sees the tunnel's peer address, never the VPN subnet or the host's uplink address
    status = json.loads(ws(vm, "vpn", "status", "--json"))
    assert status["agent_running"] is True and status["network"] == "vpn"
    assert probe(vm, IN_SVC, "tcp", WEB, "8080") == status["peer_ip"]
    # DNS through the endpoint, answered by the resolver behind the tunnel; the guest's own resolver and
    # default route are the endpoint's (what ws gave it)
    assert probe(vm, IN_SVC, "dns", ENDPOINT, WEB_NAME, "udp") == WEB
    inside = ws(vm, "exec", SVC, "--", "sh", "-c", f"'getent hosts {WEB_NAME}; ip -4 route show default'")
    assert WEB in inside and f"default via {ENDPOINT}" in inside, inside
    assert WEB_NAME in vm.succeed("cat /root/tunnel-dns.log")
    # the host reaches the service workspace directly
    assert vm.succeed(f"python3 /root/netprobe.py tcp {SVC_ADDR} {INNER_PORT}").strip() == HOST_ADDR
    # the forwarded port reaches the listener in the receiving workspace; the hook saw PORT and TARGET_IP
    port = status["forwarded_port"]
    assert port and vm.succeed("cat /root/hook.out").split() == [str(port), SVC_ADDR]
    assert probe(vm, IN_WORLD, "tcp", status["peer_ip"], str(port)) == "10.0.0.1"
    assert counters(vm)["wireguard"] > 0
    assert_no_leak(vm, "full flow")
    # core runs the agent (ws.agents) as a Type=notify unit with a watchdog, and the agent pings it
    unit = vm.succeed(f"systemctl show {AGENT_UNIT} -p Type -p WatchdogUSec -p ActiveState -p ExecStart")
    assert "Type=notify" in unit and "ActiveState=active" in unit and "WatchdogUSec=5min" in unit, unit
    assert f"--config {CONFIG} vpn run vpn" in unit, unit
    pinged = f"systemctl show {AGENT_UNIT} -p WatchdogTimestampMonotonic --value"
    first = int(vm.succeed(pinged))
    vm.wait_until_succeeds(f"test $({pinged}) -gt {first}", 60)
    assert first > 0


SCENARIOS = {
    "dns to an outside resolver": "true",
    "ipv6": "true",
    "a workspace re-pointing its default route at the host": f"{IN_SVC} ip route replace default via {HOST_ADDR}",
    "a workspace claiming the endpoint address": f"{IN_SVC} ip addr add {ENDPOINT}/24 dev host0",
    "the host's ruleset flushed": "nft flush ruleset",
    "piaw deleted": "ip -n ws-vpn link del piaw",
    "the vpn namespace deleted": "ip netns pids ws-vpn | xargs -r kill; ip netns del ws-vpn",
    "agent killed": f"systemctl kill -s SIGKILL {AGENT_UNIT}",
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_leak_scenarios(vpn_vm, scenario: str) -> None:
    """Break something, let the service workspace try every way out, count the uplink; then the agent (or,
    for the agent itself, ``ws network up vpn``) repairs it, also without a leak. Where the tunnel still
    works (a flushed host ruleset, a dead agent) the attempts go through it: only the counters decide."""
    vm = vpn_vm
    tunnel_works(vm)
    reset_counters(vm)
    vm.succeed(SCENARIOS[scenario])
    if scenario == "ipv6":
        out = vm.execute(
            f'{IN_SVC} python3 -c "import socket; s=socket.socket(socket.AF_INET6, socket.SOCK_STREAM);'
            " s.settimeout(1); s.connect(('2001:db8::1', 80))\""
        )
        assert out.status != 0
    seen = try_out(vm)
    assert seen["uplink"] == "BLOCKED", seen
    assert_no_leak(vm, scenario)
    vm.execute(f"{IN_SVC} ip addr del {ENDPOINT}/24 dev host0; {IN_SVC} ip route replace default via {ENDPOINT}")
    if scenario == "agent killed":
        assert vm.succeed(f"systemctl is-active {AGENT_UNIT} || true").strip() != "active"
        ws(vm, "network", "up", "vpn", timeout=600)
    tunnel_works(vm)
    assert_no_leak(vm, f"{scenario}, during the repair")


def test_renewal_swaps_in_place(vpn_vm) -> None:
    vm = vpn_vm
    tunnel_works(vm)
    before = session(vm)
    boot_id = vm.succeed(f"{IN_SVC} cat /proc/sys/kernel/random/boot_id")
    leader = vm.succeed(f"machinectl show {SVC} -p Leader --value")
    reset_counters(vm)
    renewed = json.loads(ws(vm, "vpn", "renew", "--force", "--json"))
    assert renewed["action"] == "renewed"
    after = session(vm)
    assert after["public_key"] != before["public_key"]
    tunnel_works(vm)
    assert probe(vm, IN_SVC, "tcp", WEB, "8080") == after["peer_ip"]
    assert vm.succeed(f"{IN_SVC} ip route show default").split()[2] == ENDPOINT  # untouched
    assert vm.succeed(f"machinectl show {SVC} -p Leader --value") == leader, "the workspace was not restarted"
    assert vm.succeed(f"{IN_SVC} cat /proc/sys/kernel/random/boot_id") == boot_id
    assert_no_leak(vm, "during a renewal")

    # verify, the leak test for users
    result = vm.execute(f"ws --config {CONFIG} vpn verify --json", 300)
    checks = {check["name"]: check for check in json.loads(result.stdout)}
    assert result.status == 0 and all(check["ok"] for check in checks.values()), checks
    tunnel_works(vm)


def test_network_down_cuts_off(vpn_vm) -> None:
    """``ws network down vpn`` under a running service workspace: no way out is left; then ``ws up`` of that
    workspace brings the network back (also when an assertion failed, so the next tests find it up)."""
    vm = vpn_vm
    tunnel_works(vm)
    key = session(vm)["public_key"]
    reset_counters(vm)
    try:
        down = json.loads(ws(vm, "network", "down", "vpn", "--json", timeout=600))
        assert down[0]["changes"][0] == "stopped the vpn agent", down  # core stops the agent before the owner's down
        assert vm.succeed(f"systemctl is-active {AGENT_UNIT} || true").strip() != "active"
        seen = try_out(vm)
        assert seen == {"web": "BLOCKED", "outside_dns": "FAILED", "uplink": "BLOCKED"}, seen
        assert_no_leak(vm, "ws network down vpn")
        # the server still sending to the gone tunnel (its keepalive, every second here) gets the host
        # kernel's "port unreachable", which the world counts apart from leaks (ws_testing.pia_world)
        vm.succeed(f"{IN_WORLD} wg set pwg0 peer {key} persistent-keepalive 1")
        try:
            unreachable = f"{IN_WORLD} nft list counter netdev count host_unreachable | grep -q 'packets [1-9]'"
            vm.wait_until_succeeds(unreachable, 60)
        finally:
            vm.succeed(f"{IN_WORLD} wg set pwg0 peer {key} persistent-keepalive 0")
        assert_no_leak(vm, "the server's keepalive after ws network down vpn")
    finally:
        # `ws up` of the running workspace brings the network back and puts its port on the new bridge
        ws(vm, "up", SVC, timeout=900)
    bridge = vm.succeed(f"cat /sys/class/net/{SVC_INTERFACE}/master/uevent | grep INTERFACE=").strip()
    assert bridge.endswith("br-vpn"), bridge
    tunnel_works(vm)


def test_stale_handshake_reconnects(vpn_vm) -> None:
    """The peer removed at the fake: the handshake goes stale, the agent reconnects (150 s timeout here)."""
    vm = vpn_vm
    tunnel_works(vm)
    key = session(vm)["public_key"]
    reset_counters(vm)
    vm.succeed(f"ip netns exec {WORLD} wg set pwg0 peer {key} remove")
    vm.wait_until_succeeds(f"! grep -q '{key}' {STATE}/pia/session.json", 600)
    tunnel_works(vm)
    assert_no_leak(vm, "the peer removed at the fake")


def test_installed_units_run_the_same_agent(vpn_vm) -> None:
    """``ws systemd install`` for this configuration (svc is autostart): the agent's unit, and the service
    workspace's unit bound to it; once installed, that unit is the agent ``ws network up`` leaves running."""
    vm = vpn_vm
    vm.succeed(f"systemctl stop {AGENT_UNIT}", 300)  # the transient unit core started; the kernel keeps the tunnel
    installed = json.loads(ws(vm, "systemd", "install", "--no-start", "--json"))
    assert sorted(installed["written"]) == [AGENT_UNIT, "ws-networks.service", f"ws-workspace-{SVC}.service"]
    workspace_unit = vm.succeed(f"cat /etc/systemd/system/ws-workspace-{SVC}.service")
    assert f"BindsTo={AGENT_UNIT}" in workspace_unit and AGENT_UNIT in workspace_unit.split("After=")[1].split("\n")[0]
    agent_unit = vm.succeed(f"cat /etc/systemd/system/{AGENT_UNIT}")
    assert "Type=notify" in agent_unit and "WatchdogSec=300s" in agent_unit and "Restart=always" in agent_unit
    assert f"--config {CONFIG} vpn run vpn" in agent_unit

    vm.succeed(f"systemctl start {AGENT_UNIT}", 900)  # returns once the agent sent READY=1 (Type=notify)
    assert vm.succeed(f"systemctl is-active {AGENT_UNIT}").strip() == "active"
    fragment = vm.succeed(f"systemctl show {AGENT_UNIT} -p FragmentPath --value").strip()
    assert fragment == f"/etc/systemd/system/{AGENT_UNIT}", "the installed unit, not a transient one"
    pid = vm.succeed(f"systemctl show {AGENT_UNIT} -p MainPID --value").strip()
    up = json.loads(ws(vm, "network", "up", "vpn", "--json", timeout=600))
    assert not any("agent" in change for change in up[0]["changes"]), up
    assert vm.succeed(f"systemctl show {AGENT_UNIT} -p MainPID --value").strip() == pid, "one agent"
    reset_counters(vm)
    tunnel_works(vm)
    assert_no_leak(vm, "the installed agent unit")
