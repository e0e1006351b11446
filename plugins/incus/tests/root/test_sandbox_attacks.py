"""Attacks from real Incus guests on a sandbox bridge of this module's own (issue 9).

Two workspaces, A and B, boot once for the module, with ``block_lan = false`` (nothing here may depend on
it). A lives in the module's own Incus project; B in one whose ``default`` profile carries an extra NIC and
disk, as a careless profile would. Guest root is played by host root inside the guest's network namespace
(``nsenter --net``, the host's Python crafting raw frames on the guest's ``eth0``): the same packets a root
shell in the guest can send. No packet leaves the module's own bridge.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

BR_NETFILTER = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
SPOOFED_SOURCE = "10.77.0.5"
RA_PREFIX = "2001:db8:77::"


def incus(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["incus", *args], capture_output=True, text=True, timeout=120, check=check)


@dataclass
class Pair:
    env: object  # conftest.WsEnv
    a: str
    b: str
    project: str
    shared: Path
    up: subprocess.CompletedProcess
    """``ws up A B``: checked by the profile test (a profile's devices can break B's start)."""

    def project_of(self, name: str) -> str:
        return self.project if name == self.b else self.env.project

    def instance(self, name: str) -> dict:
        query = f"/1.0/instances/workspace-{name}?recursion=1&project={self.project_of(name)}"
        return json.loads(incus("query", query).stdout)

    def expected(self, name: str) -> dict:
        return json.loads(self.env.ws("config", "show", "--json").stdout)["workspaces"][name]

    def ip(self, name: str) -> str:
        return self.expected(name)["ip"]

    def mac(self, name: str) -> str:
        return self.expected(name)["mac"]

    def exec(self, name: str, script: str, check: bool = False) -> subprocess.CompletedProcess:
        return self.env.ws("exec", name, "--", "sh", "-c", script, check=check, timeout=60)

    def as_guest_root(self, name: str, code: str) -> str:
        """Run Python ``code`` in the guest's network namespace with root's powers there."""
        pid = self.instance(name)["state"]["pid"]
        result = subprocess.run(
            ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", PACKETS + code],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    @property
    def gateway(self) -> str:
        return f"{self.env.subnet_prefix}.1"

    @property
    def bridge_mac(self) -> str:
        return Path(f"/sys/class/net/{self.env.bridge}/address").read_text().strip()


PACKETS = r"""
import socket, struct, time, ipaddress
def mac(text): return bytes.fromhex(text.replace(":", ""))
def send(frame, count=1, gap=0.0):
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind(("eth0", 0))
        for _ in range(count):
            s.send(frame); time.sleep(gap)
def arp_reply(src_mac, src_ip, dst_mac, dst_ip):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, mac(src_mac), socket.inet_aton(src_ip),
                       mac(dst_mac), socket.inet_aton(dst_ip))
    return mac(dst_mac) + mac(src_mac) + b"\x08\x06" + body
def checksum(data):
    if len(data) % 2: data += b"\0"
    total = sum(struct.unpack(f"!{len(data)//2}H", data))
    while total >> 16: total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
def udp4(src_mac, dst_mac, src_ip, dst_ip, port):
    payload = struct.pack("!HHHH", 40000, port, 8 + 4, 0) + b"ws!!"
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, 17, 0,
                         socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return mac(dst_mac) + mac(src_mac) + b"\x08\x00" + header + payload
def router_advertisement(src_mac, prefix):
    words = src_mac.split(":")
    src = ipaddress.IPv6Address("fe80::" + ":".join(words[i] + words[i + 1] for i in (0, 2, 4)))
    dst = ipaddress.IPv6Address("ff02::1")
    options = struct.pack("!BBBBIII16s", 3, 4, 64, 0xC0, 86400, 14400, 0, ipaddress.IPv6Address(prefix).packed)
    options += struct.pack("!BB6s", 1, 1, mac(src_mac))
    icmp = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0) + options
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(icmp), 58)
    icmp = icmp[:2] + struct.pack("!H", checksum(pseudo + icmp)) + icmp[4:]
    ip6 = struct.pack("!IHBB16s16s", 0x60000000, len(icmp), 58, 255, src.packed, dst.packed)
    return mac("33:33:00:00:00:01") + mac(src_mac) + b"\x86\xdd" + ip6 + icmp
"""


@pytest.fixture(scope="module")
def pair(env_factory):
    new_env, teardown_env = env_factory
    env = new_env(("atka", "atkb"), bridge_prefix="wsth")
    a, b = env.names
    token = env.root.name[-4:]
    project, decoy = f"wsth-{token}", f"wsthd{token}"
    shared = env.root / "shared-rw"
    shared.mkdir()
    os.chown(shared, env.uid, env.uid)
    env.workspace_lines[a] = [f'mounts = [{{ host = "{shared}", guest = "/mnt/rw" }}]']
    env.incus_options[b] = {"project": f'"{project}"'}
    env.network_lines = ["block_lan = false"]  # host protection must not depend on it
    env.write_config()
    subprocess.run(["ip", "link", "add", decoy, "type", "bridge"], check=True)  # stays down: a dead end
    try:
        # own images too: ws removes the images no instance of the project uses (never the user's)
        incus("project", "create", project, "-c", "features.images=true", "-c", "features.profiles=true")
        incus("profile", "device", "add", "default", "root", "disk", "path=/", "pool=default", "--project", project)
        incus(
            "profile", "device", "add", "default", "sneaky", "nic", "nictype=bridged", f"parent={decoy}",
            "name=eth1", "--project", project,
        )  # fmt: skip
        sneaky_folder = env.root / "sneaky"
        sneaky_folder.mkdir()
        incus(
            "profile", "device", "add", "default", "sneakydisk", "disk", f"source={sneaky_folder}",
            "path=/mnt/sneaky", "--project", project,
        )  # fmt: skip
        up = env.ws("up", a, b, timeout=600, check=False)
        yield Pair(env, a, b, project, shared, up)
    finally:
        for name in (a, b):
            env.ws("destroy", name, check=False)
        for item in json.loads(incus("list", "--project", project, "--format", "json", check=False).stdout or "[]"):
            incus("delete", "--force", item["name"], "--project", project, check=False)
        for item in json.loads(
            incus("image", "list", "--project", project, "--format", "json", check=False).stdout or "[]"
        ):
            incus("image", "delete", item["fingerprint"], "--project", project, check=False)
        for device in ("sneaky", "sneakydisk", "root"):
            incus("profile", "device", "remove", "default", device, "--project", project, check=False)
        incus("project", "delete", project, check=False)
        subprocess.run(["ip", "link", "del", decoy], check=False)
        env.incus_options.clear()
        teardown_env(env)


@pytest.fixture
def without_br_netfilter():
    """Bridged traffic no longer passes the IP hooks: isolation must hold on its own (restored after)."""
    if not BR_NETFILTER.exists():
        yield
        return
    before = BR_NETFILTER.read_text()
    BR_NETFILTER.write_text("0\n")
    try:
        yield
    finally:
        BR_NETFILTER.write_text(before)


def _reaches_ssh(pair: Pair, source: str, address: str) -> bool:
    script = f"timeout 3 bash -c 'exec 3<>/dev/tcp/{address}/22 && head -c 3 <&3' 2>/dev/null"
    return pair.exec(source, script).stdout.startswith("SSH")


def test_a_guest_cannot_reach_another_even_without_br_netfilter(pair: Pair, without_br_netfilter) -> None:
    assert pair.exec(pair.a, f"ping -c1 -W2 {pair.gateway}").returncode == 0  # the host answers ping
    assert not _reaches_ssh(pair, pair.a, pair.ip(pair.b))
    assert not _reaches_ssh(pair, pair.b, pair.ip(pair.a))
    assert pair.exec(pair.a, f"ping -c1 -W2 {pair.ip(pair.b)}").returncode != 0
    # the host itself still reaches both (ws ssh)
    assert pair.env.ssh(pair.a, "true").returncode == 0 and pair.env.ssh(pair.b, "true").returncode == 0


def test_a_guest_cannot_answer_arp_for_another_address(pair: Pair) -> None:
    gateway, b_ip = pair.gateway, pair.ip(pair.b)
    pair.exec(pair.b, f"ping -c1 -W2 {gateway}", check=True)  # B knows the host's MAC
    assert pair.env.ssh(pair.b, "true").returncode == 0  # the host knows B's
    a_mac = pair.mac(pair.a)
    pair.as_guest_root(
        pair.a,
        f"send(arp_reply({a_mac!r}, {b_ip!r}, {pair.bridge_mac!r}, {gateway!r}), count=8, gap=0.4)\n"
        f"send(arp_reply({a_mac!r}, {gateway!r}, {pair.mac(pair.b)!r}, {b_ip!r}), count=8, gap=0.4)\n",
    )
    host_view = subprocess.run(["ip", "neigh", "show", b_ip, "dev", pair.env.bridge], capture_output=True, text=True)
    assert pair.mac(pair.b) in host_view.stdout and a_mac not in host_view.stdout, host_view.stdout
    b_view = pair.exec(pair.b, f"ip neigh show {gateway}").stdout
    assert pair.bridge_mac in b_view and a_mac not in b_view, b_view


def test_spoofed_sources_never_reach_the_host(pair: Pair) -> None:
    table = f"wsth-probe-{secrets.token_hex(2)}"
    rules = (
        f"table inet {table} {{\n\tchain pre {{\n\t\ttype filter hook prerouting priority -400;\n"
        f'\t\tiifname "{pair.env.bridge}" ip saddr {{ {SPOOFED_SOURCE}, {pair.ip(pair.b)} }} counter\n\t}}\n}}\n'
    )
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)
    try:
        a_mac = pair.mac(pair.a)
        for source in (SPOOFED_SOURCE, pair.ip(pair.b)):  # outside the subnet; another workspace's address
            frame = f"udp4({a_mac!r}, {pair.bridge_mac!r}, {source!r}, {pair.gateway!r}, 53)"
            pair.as_guest_root(pair.a, f"send({frame}, 5)")
        listing = json.loads(subprocess.run(["nft", "-j", "list", "table", "inet", table], capture_output=True,
                                            text=True, check=True).stdout)  # fmt: skip
        counters = [e["counter"]["packets"] for item in listing["nftables"] if "rule" in item
                    for e in item["rule"]["expr"] if "counter" in e]  # fmt: skip
        assert counters == [0]
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], check=False)


def test_router_advertisements_from_a_guest_configure_nothing_on_the_host(pair: Pair) -> None:
    pair.as_guest_root(pair.a, f"send(router_advertisement({pair.mac(pair.a)!r}, {RA_PREFIX!r}), count=3, gap=0.3)")
    time.sleep(1)
    addresses = subprocess.run(["ip", "-6", "addr", "show", "dev", pair.env.bridge], capture_output=True, text=True)
    routes = subprocess.run(["ip", "-6", "route", "show", "dev", pair.env.bridge], capture_output=True, text=True)
    assert "2001:db8:77" not in addresses.stdout and "default" not in routes.stdout
    assert "inet6" not in addresses.stdout  # not even a link-local address for guests to talk to


def test_setuid_files_a_guest_leaves_give_nothing_on_the_host(pair: Pair) -> None:
    work = pair.env.root / "workspaces" / pair.a / "workspace"
    plant = "cp /usr/bin/id {0}/id && chown 0:0 {0}/id && chmod 4755 {0}/id"
    for guest, host in ((f"/home/{pair.env.user}/workspace", work), ("/mnt/rw", pair.shared)):
        pair.exec(pair.a, f"doas sh -c '{plant.format(guest)}'", check=True)
        planted = host / "id"
        assert planted.stat().st_uid == 0 and planted.stat().st_mode & 0o4000  # the guest did plant it
        as_user = subprocess.run(
            ["setpriv", f"--reuid={pair.env.uid}", f"--regid={pair.env.uid}", "--clear-groups", str(planted), "-u"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert as_user.stdout.strip() == str(pair.env.uid), f"{planted} ran as uid {as_user.stdout.strip()}"
    stranger = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "ls", str(work)], capture_output=True
    )
    assert stranger.returncode != 0  # other users cannot even look into the workspace's folder


def test_a_profile_s_devices_never_reach_the_instance(pair: Pair) -> None:
    assert pair.up.returncode == 0, pair.up.stderr
    instance = pair.instance(pair.b)
    assert instance["profiles"] == []
    assert "sneaky" not in instance["expanded_devices"] and "sneakydisk" not in instance["expanded_devices"]
    nics = sorted(n for n, d in instance["expanded_devices"].items() if d["type"] == "nic")
    assert nics == ["eth0"]
    links = pair.exec(pair.b, "ls /sys/class/net").stdout.split()
    assert sorted(links) == ["eth0", "lo"]
    assert pair.exec(pair.b, "test -e /mnt/sneaky").returncode != 0


def test_removed_tables_fail_closed_and_come_back_within_a_second(pair: Pair) -> None:
    """What a ``nft flush ruleset`` does to ws (other tables on this shared host are left alone)."""
    table, bridge = f"ws-{pair.env.bridge}", pair.env.bridge
    before = _tables(table)
    guard = json.loads((pair.env.root / "run" / f"ws-guard-{bridge}.json").read_text())["pid"]
    os.kill(guard, signal.SIGSTOP)
    try:
        subprocess.run(["nft", "-f", "-"], input=f"delete table inet {table}\ndelete table bridge {table}\n",
                       text=True, check=True)  # fmt: skip
        assert _tables(table) is None
        assert not _reaches_ssh(pair, pair.a, pair.ip(pair.b))  # port isolation holds without nftables
    finally:
        os.kill(guard, signal.SIGCONT)
    start = time.monotonic()
    while _tables(table) != before:
        assert time.monotonic() - start < 1.0, "ws's tables were not restored within a second"
        time.sleep(0.02)
    assert not _reaches_ssh(pair, pair.a, pair.gateway)


def test_guest_to_guest_is_a_choice(pair: Pair) -> None:
    """``guest_to_guest = true`` opens workspace-to-workspace traffic (still each with its own address)."""
    env = pair.env
    try:
        env.network_lines = ["block_lan = false", "guest_to_guest = true"]
        env.write_config()
        env.ws("network", "up")
        assert _reaches_ssh(pair, pair.a, pair.ip(pair.b))
    finally:
        env.network_lines = ["block_lan = false"]
        env.write_config()
        env.ws("network", "up")
    assert not _reaches_ssh(pair, pair.a, pair.ip(pair.b))


def _tables(table: str) -> str | None:
    texts = []
    for family in ("inet", "bridge"):
        result = subprocess.run(["nft", "list", "table", family, table], capture_output=True, text=True)
        if result.returncode != 0:
            return None
        texts.append(result.stdout)
    return "".join(texts)
