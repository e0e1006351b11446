"""The nspawn backend on a real systemd host (the test VM): the same lifecycle as the root tier, through D-Bus.

ws's image is the one the host's test cache holds (built by core's root tier), hard-linked into the VM's
exchange share and used in place (the VM has no network to build one). Under systemd the container runs as a
transient unit ``ws-nspawn-NAME.service`` registered with machined, and ``ws logs`` reads that unit's journal.
"""

from __future__ import annotations

import json

import pytest
from ws_testing.ws_config import nspawn_config_head

pytestmark = [pytest.mark.vm, pytest.mark.timeout(1800)]
# Slow under TCG: unpacking the 600 MB image over 9p and booting a container in the emulated VM take minutes.

STATE = "/var/lib/wst-nspawn"
CONFIG = "/etc/ws/nspawn-test.toml"
NAME = "vmn"
TOML = (
    nspawn_config_head(STATE, "wstnbr", "10.215.0.0/24")
    + f"""[workspaces.{NAME}]
type = "nspawn"
"""
)


def ws(vm, *args: str, timeout: float = 600) -> str:
    return vm.succeed(f"ws --config {CONFIG} " + " ".join(args), timeout)


@pytest.fixture
def image_in_vm(vm, share_ws_image):
    """ws's image shared into the VM (tests/vm/conftest.py), the configuration written."""
    built = share_ws_image(vm, STATE)
    vm.write_file(CONFIG, TOML)
    yield built
    vm.execute(f"ws --config {CONFIG} destroy {NAME} --purge --yes; ws --config {CONFIG} network down", 300)
    vm.execute(f"rm -rf {STATE} {CONFIG}")


def test_nspawn_lifecycle_through_systemd_and_machined(vm, image_in_vm) -> None:
    ws(vm, "up", NAME, timeout=900)
    status = json.loads(ws(vm, "status", NAME, "--json"))
    assert status["state"] == "running" and status["extra"]["supervisor"] == "systemd"
    unit = vm.succeed(f"systemctl show ws-nspawn-{NAME}.service -p ActiveState -p Delegate -p MainPID")
    assert "ActiveState=active" in unit and "Delegate=yes" in unit
    assert f"MainPID={status['extra']['pid']}" in unit
    machine = vm.succeed(f"machinectl show {NAME} -p Unit -p Class -p State")
    assert f"Unit=ws-nspawn-{NAME}.service" in machine and "Class=container" in machine
    assert NAME in vm.succeed("machinectl list --no-legend")

    # One ws exec for five promises (each ws command costs seconds under TCG): the login user, the guest's
    # own user namespace over the boot's id range, every first-boot step having run, the command in the
    # cgroup of the guest's PID 1 (inside the unit's, so its limits hold; seen from the guest's cgroup
    # namespace, a cgroup outside it would read /../..), and the exit status.
    shift = json.loads(vm.succeed(f"cat {STATE}/nspawn/machines/{NAME}/record.json"))["uid_shift"]
    script = "id -u; cat /proc/self/uid_map; systemctl show -p Result --value ws-firstboot.service; "
    script += "cat /proc/self/cgroup /proc/1/cgroup; exit 7"
    result = vm.execute(f"ws --config {CONFIG} exec {NAME} -- sh -c '{script}'", 120)
    assert result.status == 7, result.stderr
    *identity, own_cgroup, init_cgroup = result.stdout.split()
    assert identity == ["1234", "0", str(shift), "65536", "success"]
    assert own_cgroup == init_cgroup and ".." not in own_cgroup, result.stdout
    assert "ws-firstboot" in ws(vm, "logs", NAME)
    assert "ws-firstboot" in vm.succeed(f"journalctl -u ws-nspawn-{NAME}.service --no-pager -o cat")

    ws(vm, "down", NAME)
    assert "LoadState=not-found" in vm.succeed(f"systemctl show ws-nspawn-{NAME}.service -p LoadState")
    assert vm.execute(f"machinectl show {NAME}").status != 0
    assert vm.execute(f"ip link show vb-{NAME}").status != 0
    assert vm.succeed(f"ls {STATE}/nspawn/machines").strip() == ""
    assert json.loads(ws(vm, "status", NAME, "--json"))["state"] == "absent"
