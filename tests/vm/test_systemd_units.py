"""``ws systemd install`` and ``ws apply`` on a real systemd host (the session's test VM).

Two autostart nspawn workspaces and one that is not: the installed units, started as a boot starts them
(``systemctl start multi-user.target`` pulls in every enabled unit, in order), bring up exactly the autostart
ones; a changed workspace is the only one ``ws apply`` re-creates, and the units follow the configuration.
An nftables reload or restart with a ruleset that flushes everything: ws's firewall guard puts ws's tables
back within a second (the fast path, timed from the flush to the restore with ``nft monitor``); with the guard
stopped, the networks unit's ``ExecReload`` restores them and starts the guard again (the backstop).
``ws systemd uninstall`` leaves no unit behind.

The test shares the session's VM: everything host-wide it changes (``/etc/nftables.conf``, nftables.service,
units, networks, workspaces) is put back as it was found, even when it fails. Three container boots (two at
"boot", one re-creation) are the least the scenario needs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from ws_testing.ws_config import nspawn_config_head

pytestmark = [pytest.mark.vm, pytest.mark.timeout(2400)]  # three container boots and two stops under TCG

STATE = "/var/lib/wst-apply"
CONFIG = "/etc/ws/apply-test.toml"
BRIDGE = "wstabr"
TABLE = f"ws-{BRIDGE}"  # ws.network.firewall.table_for
GUARD = f"ws-guard-{BRIDGE}.service"  # ws.network.guard.service_name, a transient unit under systemd
OUR_UNITS = "'ws-networks.service' 'ws-workspace-*' 'ws-agent-*'"
PYTHON = "/opt/ws/bin/python3"
NFTABLES_CONF = "/etc/nftables.conf"
SAVED = "/root/apply-test-saved"

GUARD_BOUND = 1.0
"""The issue's goal: ws's tables are back within a second of a flush (asserted as such under KVM)."""
GUARD_BOUND_TCG = 10.0
GUARD_SHARE_OF_BACKSTOP = 1 / 3
"""Under TCG the guest runs 20-50x slower and the host's load varies: there the guard must beat a third of
the backstop's time measured in the same run (0.3-1.7 s against 7-13 s measured), which the slow path cannot."""


def configuration(wa_autostart: bool = True, wb_cpus: str = "") -> str:
    head = nspawn_config_head(STATE, BRIDGE, "10.216.0.0/24", "stop_timeout = 300.0  # a guest's poweroff under TCG")
    return (
        head
        + f"""[workspaces.wa]
type = "nspawn"
autostart = {str(wa_autostart).lower()}
[workspaces.wb]
type = "nspawn"
autostart = true
{wb_cpus}
[workspaces.wc]
type = "nspawn"
"""
    )


FLUSHING_RULESET = """#!/usr/sbin/nft -f
flush ruleset
table inet filter {
    chain input { type filter hook input priority filter; }
}
"""

RESTORE_TIMER = f"""
import json, os, selectors, subprocess, sys, time

command, timeout = sys.argv[1], float(sys.argv[2])
monitor = subprocess.Popen(["nft", "monitor"], stdout=subprocess.PIPE)
selector = selectors.DefaultSelector()
selector.register(monitor.stdout, selectors.EVENT_READ)
events, pending = [], b""

def read(until):
    global pending
    for _ in selector.select(max(0.0, until - time.monotonic())):
        data = os.read(monitor.stdout.fileno(), 65536)
        now = time.monotonic()
        lines = (pending + data).split(b"\\n")
        pending = lines.pop()
        events.extend((now, line.decode()) for line in lines)

def windows_of(events):
    # table events take effect when their transaction commits ("# new generation"): a replace inside one
    # transaction (ws's own delete-and-add) never leaves a table missing
    present = {{"inet {TABLE}": True, "bridge {TABLE}": True}}
    gone, windows, changes = {{}}, [], {{}}
    for at, line in events:
        words = line.split()
        if line.startswith("# new generation"):
            for name, now_present in changes.items():
                if present[name] and not now_present:
                    gone[name] = at
                elif now_present and not present[name]:
                    windows.append(at - gone.pop(name))
                present[name] = now_present
            changes = {{}}
        elif words[1:2] == ["table"] and " ".join(words[2:4]) in present:
            changes[" ".join(words[2:4])] = words[0] == "add"
    return windows, sorted(gone)

# the monitor listens once it reports a transaction of our own making
deadline = time.monotonic() + 60
while not any("delete table inet ws-timer-probe" in line for _, line in events):
    assert time.monotonic() < deadline, "nft monitor printed nothing"
    subprocess.run(["nft", "add table inet ws-timer-probe; delete table inet ws-timer-probe"], check=True)
    read(time.monotonic() + 1.0)
events.clear()
started = time.monotonic()
child = subprocess.Popen(["sh", "-c", command])
deadline = started + timeout
ended, windows, gone = None, [], []
while time.monotonic() < deadline:
    read(min(deadline, time.monotonic() + 0.2))
    windows, gone = windows_of(events)
    if ended is None and child.poll() is not None:
        ended = time.monotonic()
    quiet = time.monotonic() - max([at for at, _ in events] + [ended or deadline])
    if ended is not None and windows and not gone and quiet > 1.0:  # events of the command all read
        break
monitor.terminate()
result = {{"windows": windows, "missing": gone, "command": child.poll()}}
print(json.dumps(result | {{"seconds": ended and ended - started}}))
"""


def ws(vm, *args: str, timeout: float = 300) -> str:
    return vm.succeed(f"ws --config {CONFIG} " + " ".join(args), timeout)


def states(vm) -> dict[str, str]:
    return {row["name"]: row["state"] for row in json.loads(ws(vm, "list", "--json"))}


def pids(vm) -> dict[str, int | None]:
    return {name: json.loads(ws(vm, "status", name, "--json"))["extra"].get("pid") for name in ("wa", "wb")}


def restore_windows(vm, command: str, timeout: float = 180) -> dict:
    """Run ``command`` (which flushes the ruleset) and time, with ``nft monitor``, how long each of ws's tables
    was missing: from its deletion to its next creation, inside the VM. ``missing`` lists tables still absent."""
    vm.write_file("/root/restore-timer.py", RESTORE_TIMER)
    out = vm.succeed(f"{PYTHON} /root/restore-timer.py '{command}' {timeout}", timeout + 60)
    return json.loads(out.strip().splitlines()[-1])


def settled(vm) -> None:
    """Wait until the networks unit has no job left (a reload or restart that nftables propagated to it)."""
    vm.wait_until_succeeds(
        'test -z "$(systemctl list-jobs --no-legend ws-networks.service)" && systemctl is-active ws-networks.service',
        300,
    )


def count(vm, unit: str, text: str) -> int:
    """How many lines of ``unit``'s journal contain ``text``."""
    return vm.succeed(f"journalctl -u {unit} -o cat --no-pager").count(text)


HOST_WIDE = f"""set -e
cat {NFTABLES_CONF}; nft list ruleset; sysctl net.ipv4.ip_forward; ip -o link show | awk '{{print $2}}'
systemctl is-active nftables.service || true; systemctl is-enabled nftables.service || true
systemctl list-units --all --plain --no-legend 'ws-*' | awk '{{print $1, $3, $4}}'; ls -R /etc/systemd/system
machinectl list --no-legend; ls -d {STATE} {CONFIG} 2>&1 || true
"""
"""What this test changes host-wide, listed; it must list the same before and after the test."""


@pytest.fixture
def units_host(vm, share_ws_image) -> Iterator:
    """The session's VM with ws's image shared and nftables loading a flushing ruleset; afterwards ws's units,
    workspaces, network and state are gone and nftables is as it was found (file, service, ruleset): the
    teardown fails if anything in :data:`HOST_WIDE` differs."""
    found = vm.succeed(HOST_WIDE)
    vm.succeed(
        f"mkdir -p {SAVED} && cp -a {NFTABLES_CONF} {SAVED}/ && nft list ruleset > {SAVED}/ruleset"
        f" && (systemctl is-active nftables.service > {SAVED}/active || true)"
    )
    share_ws_image(vm, STATE)
    vm.write_file(NFTABLES_CONF, FLUSHING_RULESET, 0o755)
    vm.succeed("systemctl start nftables.service")
    vm.write_file(CONFIG, configuration())
    yield vm
    vm.execute(
        f"ws --config {CONFIG} systemd uninstall;"
        f" for name in wa wb wc; do ws --config {CONFIG} destroy $name --purge --yes; done;"
        f" ws --config {CONFIG} network down",
        900,
    )
    vm.execute(
        f"cp -a {SAVED}/nftables.conf {NFTABLES_CONF}"
        f"; grep -qx active {SAVED}/active || systemctl stop nftables.service"
        f"; (echo 'flush ruleset'; cat {SAVED}/ruleset) | nft -f -"
        f"; rm -rf {SAVED} {STATE} {CONFIG} /root/restore-timer.py",
        120,
    )
    assert vm.succeed(HOST_WIDE) == found, "the shared VM is not as the test found it"


def test_units_start_exactly_the_autostart_workspaces_and_follow_the_configuration(units_host, vm_accel) -> None:
    vm = units_host
    phases: dict[str, float] = {}
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        phases[name] = time.monotonic() - mark
        mark = time.monotonic()

    # installed but not started: as on a host right after installing, before its next boot
    installed = json.loads(ws(vm, "systemd", "install", "--no-start", "--json"))
    units = ["ws-networks.service", "ws-workspace-wa.service", "ws-workspace-wb.service"]
    assert installed["written"] == units and installed["started"] == []
    for unit in units:
        assert vm.succeed(f"systemctl is-enabled {unit}").strip() == "enabled"
    assert set(states(vm).values()) == {"absent"}
    phase("install")

    vm.succeed("systemctl start multi-user.target", timeout=1800)  # what a boot does with the enabled units
    for unit in units:
        vm.wait_for_unit(unit, 60)
    assert states(vm) == {"wa": "running", "wb": "running", "wc": "absent"}
    assert vm.succeed(f"nft list table inet {TABLE}")
    assert vm.succeed(f"systemctl is-active {GUARD}").strip() == "active"
    assert json.loads(ws(vm, "systemd", "status", "--json")) == [
        {"unit": unit, "present": True, "current": True, "enabled": "enabled", "active": "active"} for unit in units
    ]
    phase("boot: networks and two workspaces")

    # nftables reloaded or restarted with a ruleset that flushes everything: the guard puts ws's tables back
    restored = f"re-applied nftables tables {TABLE} (missing)"
    reload = restore_windows(vm, "systemctl reload nftables.service")
    settled(vm)
    restart = restore_windows(vm, "systemctl restart nftables.service")
    settled(vm)
    assert reload["command"] == 0 and restart["command"] == 0, (reload, restart)
    assert not reload["missing"] and not restart["missing"], (reload, restart)
    assert len(reload["windows"]) == 2, reload  # both tables (inet, bridge) flushed once and restored
    # a restart flushes twice (ExecStop, then the ruleset's own flush); the guard may be done before the second
    assert len(restart["windows"]) in (2, 4), restart
    assert count(vm, GUARD, restored) >= 2, "the guard restored the tables after the reload and the restart"
    guard_seconds = max(reload["windows"] + restart["windows"])
    phase("nftables reload and restart (guard)")

    # the backstop: without the guard, the networks unit's ExecReload (`ws network up`) restores the tables
    # and starts the guard again
    vm.succeed(f"systemctl stop {GUARD}")
    applied_before = count(vm, "ws-networks.service", "applied nftables tables")
    backstop = restore_windows(vm, "systemctl reload nftables.service", timeout=300)
    settled(vm)
    assert backstop["command"] == 0 and not backstop["missing"] and len(backstop["windows"]) == 2, backstop
    backstop_seconds = max(backstop["windows"])
    bound = GUARD_BOUND if vm_accel == "kvm" else min(GUARD_BOUND_TCG, backstop_seconds * GUARD_SHARE_OF_BACKSTOP)
    print(
        f"ws's tables missing after an nftables reload: {max(reload['windows']):.2f} s, after a restart: "
        f"{max(restart['windows']):.2f} s (the guard; bound {bound:.2f} s under {vm_accel}); "
        f"after a reload without the guard: {backstop_seconds:.2f} s (the unit's ExecReload)"
    )
    assert guard_seconds < bound, (reload, restart, backstop)
    assert count(vm, "ws-networks.service", "applied nftables tables") > applied_before, "ExecReload restored"
    assert vm.succeed(f"systemctl is-active {GUARD}").strip() == "active", "ExecReload started the guard again"
    phase("nftables reload (backstop)")

    # the configuration changes: only wb is re-created (another CPU limit); wa is no longer autostart, so
    # its unit goes, but it keeps running
    before = pids(vm)
    vm.write_file(CONFIG, configuration(wa_autostart=False, wb_cpus="cpus = 1"))
    plan = json.loads(ws(vm, "apply", "--dry-run", "--json"))
    assert {s["name"]: (s["action"], s["reasons"]) for s in plan["workspaces"]} == {
        "wa": ("unchanged", []),
        "wb": ("recreate", ["workspace"]),
        "wc": ("leave", ["not autostart"]),
    }
    assert plan["units"]["removed"] == ["ws-workspace-wa.service"]
    applied = json.loads(ws(vm, "apply", "--json", timeout=1200))
    assert applied["done"] == [
        {"name": "wa", "action": "unchanged", "state": "running"},
        {"name": "wb", "action": "recreated", "state": "running"},
    ]
    assert applied["units"]["removed"] == ["ws-workspace-wa.service"]
    after = pids(vm)
    assert after["wa"] == before["wa"] and after["wb"] != before["wb"]
    assert "CPUQuotaPerSecUSec=1s" in vm.succeed("systemctl show ws-nspawn-wb.service -p CPUQuotaPerSecUSec")
    assert vm.execute("test -e /etc/systemd/system/ws-workspace-wa.service").status != 0
    assert vm.succeed("systemctl list-units --all --plain --no-legend ws-workspace-wa.service").strip() == ""
    assert json.loads(ws(vm, "apply", "--dry-run", "--json"))["units"]["written"] == []
    phase("apply: one re-created")

    # uninstalled: no ws unit is left, loaded or on disk; the workspace of the remaining unit went down with it
    ws(vm, "systemd", "uninstall", timeout=600)
    assert vm.succeed(f"systemctl list-units --all --plain --no-legend {OUR_UNITS}").strip() == ""
    files = vm.execute(f"systemctl list-unit-files --plain --no-legend {OUR_UNITS}")  # exit 1 when none match
    assert files.stdout.strip() == "", files.stdout
    assert vm.succeed("ls /etc/systemd/system | grep -E '^ws-(networks|workspace|agent)' || true").strip() == ""
    assert vm.succeed("find /etc/systemd/system -xtype l -name 'ws-*'").strip() == "", "no dangling wants links"
    assert states(vm) == {"wa": "running", "wb": "absent", "wc": "absent"}, "wa had no unit any more"
    phase("uninstall")
    print("phases: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in phases.items()))
