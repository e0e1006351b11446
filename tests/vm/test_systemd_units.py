"""``ws systemd install`` and ``ws apply`` on a real systemd host (the test VM, one boot of its own).

Two autostart nspawn workspaces and one that is not: the installed units, started as a boot starts them
(``systemctl start multi-user.target`` pulls in every enabled unit, in order), bring up exactly the autostart
ones; a changed workspace is the only one ``ws apply`` re-creates, and the units follow the configuration;
an nftables reload or restart with a ruleset that flushes everything gets ws's table back within a second;
``ws systemd uninstall`` leaves no unit behind.
"""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.timeout(3600)]  # a boot of its own and three container boots (TCG)

STATE = "/var/lib/wst-apply"
CONFIG = "/etc/ws/apply-test.toml"
BRIDGE = "wstabr"
TABLE = f"ws-{BRIDGE}"  # ws.network.firewall.table_for
OUR_UNITS = "'ws-networks.service' 'ws-workspace-*' 'ws-agent-*'"


def configuration(wa_autostart: bool = True, wb_cpus: str = "") -> str:
    return f"""state_dir = "{STATE}"
[user]
name = "wsuser"
uid = 1234
gid = 1234
authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq8b3e1N9aV5aBv3d1OBh2D5wXx8pC2TbQvC8mU7m0b ws-test"]
[network]
bridge = "{BRIDGE}"
subnet = "10.216.0.0/24"
upstream = "eth0"  # the VM's user-mode NIC: restrict=on, nothing leaves the VM
[nix]
inherit_host = false
[nspawn]
ready_timeout = 600.0
stop_timeout = 300.0  # a guest's poweroff under TCG on a loaded host
[workspaces.wa]
type = "nspawn"
autostart = {str(wa_autostart).lower()}
[workspaces.wb]
type = "nspawn"
autostart = true
{wb_cpus}
[workspaces.wc]
type = "nspawn"
"""


FLUSHING_RULESET = """#!/usr/sbin/nft -f
flush ruleset
table inet filter {
    chain input { type filter hook input priority filter; }
}
"""


def ws(vm, *args: str, timeout: float = 300) -> str:
    return vm.succeed(f"ws --config {CONFIG} " + " ".join(args), timeout)


def states(vm) -> dict[str, str]:
    return {row["name"]: row["state"] for row in json.loads(ws(vm, "list", "--json"))}


def pids(vm) -> dict[str, int | None]:
    return {name: json.loads(ws(vm, "status", name, "--json"))["extra"].get("pid") for name in ("wa", "wb")}


def seconds_until_table(vm, command: str) -> float:
    """Seconds from ``command`` (which flushes the ruleset) until ws's table is back, timed inside the VM."""
    script = f"""set -e
    start=$(date +%s.%N)
    {command}
    for i in $(seq 600); do nft list table inet {TABLE} >/dev/null 2>&1 && break; sleep 0.05; done
    nft list table inet {TABLE} >/dev/null
    awk "BEGIN {{ print $(date +%s.%N) - $start }}"
    """
    return float(vm.succeed(script, 120).strip())


def test_units_start_exactly_the_autostart_workspaces_and_follow_the_configuration(
    fresh_vm, share_ws_image, vm_accel
) -> None:
    vm = fresh_vm
    share_ws_image(vm, STATE)
    vm.write_file("/etc/nftables.conf", FLUSHING_RULESET, 0o755)
    vm.succeed("systemctl start nftables.service")
    vm.write_file(CONFIG, configuration())

    # installed but not started: as on a host right after installing, before its next boot
    installed = json.loads(ws(vm, "systemd", "install", "--no-start", "--json"))
    units = ["ws-networks.service", "ws-workspace-wa.service", "ws-workspace-wb.service"]
    assert installed["written"] == units and installed["started"] == []
    for unit in units:
        assert vm.succeed(f"systemctl is-enabled {unit}").strip() == "enabled"
    assert set(states(vm).values()) == {"absent"}

    vm.succeed("systemctl start multi-user.target", timeout=1800)  # what a boot does with the enabled units
    for unit in units:
        vm.wait_for_unit(unit, 60)
    assert states(vm) == {"wa": "running", "wb": "running", "wc": "absent"}
    assert vm.succeed(f"nft list table inet {TABLE}")
    assert json.loads(ws(vm, "systemd", "status", "--json")) == [
        {"unit": unit, "present": True, "current": True, "enabled": "enabled", "active": "active"} for unit in units
    ]

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

    # nftables reloaded or restarted with a ruleset that flushes everything: ws's table is back at once
    reload_seconds = seconds_until_table(vm, "systemctl reload nftables.service")
    restart_seconds = seconds_until_table(vm, "systemctl restart nftables.service")
    print(f"ws's table back after an nftables reload: {reload_seconds:.2f} s, restart: {restart_seconds:.2f} s")
    # The work is one `ws network up` (a Python start and one nft transaction), well under a second on real
    # hardware. Under TCG on a loaded 2-core host the guest runs it 20-50x slower: 19.9 s and 32.3 s measured
    # with a load of 15 (docs/systemd.md); there the bound only says the table comes back by itself.
    bound = 1.0 if vm_accel == "kvm" else 90.0
    assert reload_seconds < bound and restart_seconds < bound, (reload_seconds, restart_seconds)

    # uninstalled: no ws unit is left, loaded or on disk; the workspace of the remaining unit went down with it
    ws(vm, "systemd", "uninstall", timeout=600)
    assert vm.succeed(f"systemctl list-units --all --plain --no-legend {OUR_UNITS}").strip() == ""
    files = vm.execute(f"systemctl list-unit-files --plain --no-legend {OUR_UNITS}")  # exit 1 when none match
    assert files.stdout.strip() == "", files.stdout
    assert vm.succeed("ls /etc/systemd/system | grep -E '^ws-(networks|workspace|agent)' || true").strip() == ""
    assert vm.succeed("find /etc/systemd/system -xtype l -name 'ws-*'").strip() == "", "no dangling wants links"
    assert states(vm) == {"wa": "running", "wb": "absent", "wc": "absent"}, "wa had no unit any more"
    ws(vm, "down", "wa")
