"""A fake PIA world inside a test VM, shared by the vpn VM tests and ``benchmarks/vpn_renew.py``.

The VM's root namespace is ws's host. Namespace ``pia-world`` sits behind the VM's uplink ``wsup0`` (made the
VM's default route): part 1's fake PIA service (``fake_pia.py`` as a program) on PIA's real ports, a real
WireGuard peer ``pwg0`` to which addKey adds the client's key, and behind it, reachable only through the tunnel,
a resolver (10.0.0.243) and a web endpoint (192.88.99.80:8080) that answers with the caller's address. An outside
resolver (203.0.113.53) answers directly on the uplink. Counters at the uplink's ingress, inside the world
(so no rule of the host can hide a packet), count what leaves the host outside the tunnel; each such packet is
also logged to the VM's kernel log (``wst-other:``), so a failure says what it was. One thing is counted apart:
the host kernel's "port unreachable" to the WireGuard server. Once the tunnel is gone, a packet the server still
sends (WireGuard's keepalive, 10 s after the last data it received) finds no socket on the host, which answers
with that ICMP error: the host's reply to the server, carrying nothing of the workspace's.

The service workspace ``svc`` is an nspawn workspace on the ``vpn`` network (ws's image shared from the host,
:mod:`ws_testing.ws_image`); probes run in its network namespace (:data:`IN_SVC`: the VM's python and
netprobe, entered with nsenter into the container's namespace, so no tool is needed in the guest). The
benchmark, which boots no container, uses a stand-in: a namespace ``wst-svc`` plugged into ``br-vpn`` with the
address, gateway and DNS that ws gives a service workspace (:data:`STANDIN_SETUP`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import ws_testing.fake_pia as fake_module
from ws_testing.fake_pia import PASSWORD, USERNAME, RegionSpec, Spec, WgServer

CONFIG = "/etc/ws/vpn-test.toml"
STATE = "/var/lib/wst-vpn"
WORLD = "pia-world"
UPLINK_HOST, UPLINK_WORLD = "203.0.113.200", "203.0.113.254"
API, WG_SERVER, META, OUTSIDE_DNS = "203.0.113.1", "203.0.113.11", "203.0.113.21", "203.0.113.53"
VIP, TUNNEL_DNS = "10.0.0.111", "10.0.0.243"
WEB = "192.88.99.80"
"""A public address (behind the tunnel only): the endpoint's forwarder is core's hardened dnsmasq, whose
``stop-dns-rebind`` drops answers in private ranges, TEST-NETs included, as it would from PIA's resolvers."""
SVC, SVC_ADDR, ENDPOINT, HOST_ADDR = "svc", "10.100.0.10", "10.100.0.2", "10.100.0.1"
SVC_INTERFACE = f"vb-{SVC}"
"""The host end of the service workspace's veth (nspawn's ``--network-bridge`` names it); ``host0`` inside."""
IN_SVC = f'nsenter -t "$(machinectl show {SVC} -p Leader --value)" -n'
"""Prefix of a command run in the nspawn service workspace's network namespace (its interfaces, addresses,
routes: what root in the guest could change)."""
IN_WORLD = f"ip netns exec {WORLD}"
WEB_NAME = "web.pia.test"
TEST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq8b3e1N9aV5aBv3d1OBh2D5wXx8pC2TbQvC8mU7m0b ws-test"
INNER_PORT = 6881

SPEC = Spec(
    username=USERNAME,
    password=PASSWORD,
    regions=[RegionSpec("swiss", "Swiss", meta=[(META, "zurich-meta")], wg=[WgServer(WG_SERVER, "zurich401", VIP)])],
    serverlist_host="serverlist.pia.test",
    serverlist_address=API,
    token_host="www.pia.test",
    token_address=API,
    meta_port=443,
    wg_interface="pwg0",
)

WORLD_SETUP = f"""set -e
ip netns add {WORLD}; ip -n {WORLD} link set lo up
ip link add wsup0 type veth peer name up0 netns {WORLD}
sysctl -qw net.ipv6.conf.wsup0.disable_ipv6=1
ip addr add {UPLINK_HOST}/24 dev wsup0; ip link set wsup0 up
ip netns exec {WORLD} sysctl -qw net.ipv6.conf.all.disable_ipv6=1
sysctl -qw net.netfilter.nf_log_all_netns=1  # the world's log rule below writes to the VM's kernel log
for a in {UPLINK_WORLD} {API} {WG_SERVER} {META} {OUTSIDE_DNS}; do ip -n {WORLD} addr add $a/24 dev up0; done
ip -n {WORLD} link set up0 up
ip route replace default via {UPLINK_WORLD} dev wsup0
ip -n {WORLD} link add pwg0 type wireguard
umask 077; wg genkey > /root/world.key; wg pubkey < /root/world.key > /root/world.pub
ip netns exec {WORLD} wg set pwg0 private-key /root/world.key listen-port 1337
ip -n {WORLD} addr add 10.0.0.1/8 dev pwg0; ip -n {WORLD} link set pwg0 up
for a in {TUNNEL_DNS} 10.0.0.242 {WEB} {VIP}; do ip -n {WORLD} addr add $a/32 dev lo; done
ip netns exec {WORLD} nft -f - <<'NFT'
table inet world {{
    chain input {{
        type filter hook input priority 0; policy accept; iifname "up0" ip daddr {{ 10.0.0.0/8, {WEB} }} drop;
    }}
}}
table netdev count {{
    counter from_vpn {{}}
    counter to_hidden {{}}
    counter other {{}}
    counter host_unreachable {{}}
    counter wireguard {{}}
    chain uplink {{
        type filter hook ingress device "up0" priority 0; policy accept;
        ip saddr 10.100.0.0/16 counter name "from_vpn"
        ip daddr {{ 10.0.0.0/8, {WEB}, {OUTSIDE_DNS} }} counter name "to_hidden"
        meta protocol ip udp dport 1337 counter name "wireguard" accept
        meta protocol ip tcp dport {{ 443, 1337 }} ip daddr {{ {API}, {WG_SERVER} }} accept
        ip saddr {UPLINK_HOST} ip daddr {WG_SERVER} icmp type destination-unreachable counter name "host_unreachable" \
            accept
        meta protocol {{ ip, ip6 }} counter name "other" log prefix "wst-other: "
    }}
}}
NFT
ip netns exec {WORLD} dnsmasq --conf-file=/dev/null --listen-address={TUNNEL_DNS},10.0.0.242 --bind-interfaces \\
    --no-resolv --no-hosts --address=/pia.test/{WEB} --log-queries --log-facility=/root/tunnel-dns.log \\
    --pid-file=/run/wst-tunnel-dns.pid
ip netns exec {WORLD} dnsmasq --conf-file=/dev/null --listen-address={OUTSIDE_DNS} --bind-interfaces \\
    --no-resolv --no-hosts --address=/pia.test/{WEB} --pid-file=/run/wst-outside-dns.pid
setsid -f ip netns exec {WORLD} python3 /root/netprobe.py serve {WEB} 8080 >/dev/null 2>&1
setsid -f ip netns exec {WORLD} python3 /root/whoami.py {WEB} 80 >/dev/null 2>&1
"""
WHOAMI = """import http.server, sys

class Whoami(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.client_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), Whoami).serve_forever()
"""

STANDIN_SETUP = f"""set -e
ip netns add wst-svc; ip -n wst-svc link set lo up
ip netns exec wst-svc sysctl -qw net.ipv6.conf.all.disable_ipv6=0
ip link add vb-svc type veth peer name host0 netns wst-svc
ip link set vb-svc master br-vpn up
ip -n wst-svc addr add {SVC_ADDR}/24 dev host0; ip -n wst-svc link set host0 up mtu 1420
ip -n wst-svc route add default via {ENDPOINT}
setsid -f ip netns exec wst-svc python3 /root/netprobe.py serve {SVC_ADDR} {INNER_PORT} >/dev/null 2>&1
"""


def toml(**pia: object) -> str:
    settings = {
        "username": USERNAME,
        "password_file": "/root/pia-password",
        "ca_file": "/root/fake-pia/ca.crt",
        "serverlist_pubkey_file": "/root/fake-pia/serverlist.pub",
        "serverlist_url": f"https://{SPEC.serverlist_host}/vpninfo/servers/v6",
        "token_url": f"https://{SPEC.token_host}/api/client/v2/token",
        "region": "swiss",
        "port_forward": True,
        "health_interval": 3.0,
        "handshake_timeout": 150.0,  # above WireGuard's rekey interval (120 s + a keepalive)
        "verify_url": f"http://{WEB}/",
        "wait_for_name": WEB_NAME,
        "on_port_forwarded": ["/bin/sh", "-c", 'echo "$PORT $TARGET_IP" >> /root/hook.out'],
        **pia,
    }
    lines = [f'state_dir = "{STATE}"', "[user]", 'name = "wsuser"', "uid = 1234", "gid = 1234",
             f"authorized_keys = [{json.dumps(TEST_KEY)}]", "[network]", 'bridge = "wstsbx"',
             'subnet = "10.217.0.0/24"', 'upstream = "wsup0"', "[nix]", "inherit_host = false", "[nspawn]",
             "ready_timeout = 900.0", "stop_timeout = 300.0", "[pia]"]  # fmt: skip
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    lines += ["[pia.hosts]", f'"{SPEC.serverlist_host}" = "{API}"', f'"{SPEC.token_host}" = "{API}"']
    lines += ["[pia.receive_forwarded_port]", f'workspace = "{SVC}"', 'protocol = "tcp"', f"port = {INNER_PORT}"]
    lines += [f"[workspaces.{SVC}]", 'type = "nspawn"', 'network = "vpn"', f'ip = "{SVC_ADDR}"', "autostart = true"]
    return "\n".join(lines) + "\n"


def ws(vm, *args: str, timeout: float = 240) -> str:
    return vm.succeed(f"ws --config {CONFIG} " + " ".join(args), timeout)


def probe(vm, where: str, *args: str) -> str:
    """netprobe (core/tests/root/netprobe.py) run with the prefix ``where`` (:data:`IN_SVC`, :data:`IN_WORLD`)."""
    return vm.succeed(f"{where} python3 /root/netprobe.py " + " ".join(args)).strip()


def counters(vm) -> dict[str, int]:
    listing = json.loads(vm.succeed(f"ip netns exec {WORLD} nft -j list counters table netdev count"))
    return {item["counter"]["name"]: item["counter"]["packets"] for item in listing["nftables"] if "counter" in item}


def reset_counters(vm) -> None:
    vm.succeed(f"ip netns exec {WORLD} nft reset counters table netdev count >/dev/null")


def assert_no_leak(vm, scenario: str) -> None:
    seen = counters(vm)
    leaks = {name: seen[name] for name in ("from_vpn", "to_hidden", "other") if seen[name]}
    if leaks:
        logged = vm.execute("dmesg | grep 'wst-other: ' | tail -n 5").stdout
        raise AssertionError(f"{scenario}: packets left the VM's uplink outside the tunnel: {leaks}\n{logged}")


def try_out(vm) -> dict[str, str]:
    """What the service workspace reaches right now (each attempt times out after 1 s)."""
    return {
        "web": probe(vm, IN_SVC, "tcp", WEB, "8080"),
        "outside_dns": probe(vm, IN_SVC, "dns", OUTSIDE_DNS, WEB_NAME, "udp"),
        "uplink": probe(vm, IN_SVC, "tcp", UPLINK_WORLD, "22"),
    }


def tunnel_works(vm, where: str = IN_SVC, timeout: float = 300) -> None:
    vm.wait_until_succeeds(f"{where} python3 /root/netprobe.py tcp {WEB} 8080 | grep -qv BLOCKED", timeout)


def setup(vm, netprobe: Path, **pia: object) -> None:
    """The world, the fake PIA service and ws's configuration (the caller brings the network up)."""
    vm.write_file("/root/netprobe.py", netprobe.read_text())
    vm.write_file("/root/fake_pia.py", Path(fake_module.__file__).read_text())
    vm.write_file("/root/whoami.py", WHOAMI)
    vm.write_file("/root/pia-password", PASSWORD + "\n", mode=0o600)
    vm.succeed(WORLD_SETUP, 120)
    public = vm.succeed("cat /root/world.pub").strip()
    spec = dataclasses.replace(SPEC, wg_public_key=public)
    vm.write_file("/root/fake-pia.json", json.dumps(dataclasses.asdict(spec)))
    vm.succeed(
        f"setsid -f ip netns exec {WORLD} /opt/ws/bin/python3 /root/fake_pia.py /root/fake-pia.json /root/fake-pia "
        ">/root/fake-pia.log 2>&1"
    )
    vm.wait_until_succeeds("test -e /root/fake-pia/ready", 120)
    vm.write_file(CONFIG, toml(**pia))
