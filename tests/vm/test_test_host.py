"""The VM tier itself: the booted test host has what the nspawn backend and the PIA VPN plugin rely on
(systemd as PID 1 with a system D-Bus, kernel WireGuard that can move between network namespaces), and the
driver API behaves as documented. These tests share the session's VM and undo what they create."""

from __future__ import annotations

import pytest
from ws_testing.machine import CommandFailed

pytestmark = pytest.mark.vm


def test_systemd_is_pid1_with_a_system_bus_and_reaches_multi_user(vm) -> None:
    assert vm.succeed("cat /proc/1/comm").strip() == "systemd"
    assert vm.succeed("systemctl show --property=ActiveState --value multi-user.target").strip() == "active"
    # the system bus answers and systemd is on it (what the nspawn backend talks to)
    names = vm.succeed("busctl --system --no-pager --no-legend list | cut -d' ' -f1")
    assert "org.freedesktop.systemd1" in names.split()
    virtualization = vm.succeed(
        "busctl --system get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 "
        "org.freedesktop.systemd1.Manager Virtualization"
    )
    assert virtualization.strip() in ('s "kvm"', 's "qemu"')
    assert vm.succeed("systemctl --failed --no-legend --plain").strip() == ""


def test_wireguard_created_in_one_namespace_moves_to_another_keeping_its_socket(vm) -> None:
    """The VPN design: the WireGuard interface is created (and its UDP socket bound) in the host namespace,
    then moved into the VPN container's namespace; the socket stays in the host namespace."""
    try:
        vm.succeed(
            "set -e\n"
            "ip netns add wst-vpn\n"
            "ip link add wgt type wireguard\n"
            "umask 077; wg genkey > /run/wst-wg.key\n"
            "wg set wgt listen-port 51999 private-key /run/wst-wg.key\n"
            "ip link set wgt netns wst-vpn\n"
            "ip -n wst-vpn link set wgt up\n"  # WireGuard binds its UDP socket when the link goes up
        )
        assert "wgt" not in vm.succeed("ip -brief link").split()
        inside = vm.succeed("ip -n wst-vpn -brief link show wgt")
        assert inside.startswith("wgt")
        assert vm.succeed("ip netns exec wst-vpn wg show wgt listen-port").strip() == "51999"
        # the UDP socket is in the namespace the interface was created in, not in the one it now lives in
        assert ":51999 " in vm.succeed("ss -Hlun")
        assert ":51999 " not in vm.succeed("ip netns exec wst-vpn ss -Hlun")
    finally:
        vm.execute("ip netns del wst-vpn; ip link del wgt; rm -f /run/wst-wg.key")


def test_driver_reports_status_and_output_of_failures(vm) -> None:
    with pytest.raises(CommandFailed) as failed:
        vm.succeed("echo to-stdout; echo to-stderr >&2; exit 3")
    assert failed.value.result.status == 3
    assert "to-stdout" in str(failed.value) and "to-stderr" in str(failed.value)
    assert "to-stderr" in vm.fail("echo to-stderr >&2; false")
    with pytest.raises(CommandFailed):
        vm.fail("true")
    result = vm.execute("sleep 30", timeout=2)
    assert result.status in (124, 137)


def test_driver_waits_and_copies_files_out(vm, tmp_path) -> None:
    vm.succeed("rm -f /run/wst-flag; (sleep 3; touch /run/wst-flag) >/dev/null 2>&1 &")
    vm.wait_until_succeeds("test -e /run/wst-flag", timeout=60)
    with pytest.raises(CommandFailed, match="still failing"):
        vm.wait_until_succeeds("test -e /run/wst-never", timeout=3)
    vm.write_file("/run/wst-dir/data.txt", "line one\nline two\n", mode=0o600)
    copied = vm.copy_from_vm("/run/wst-dir", tmp_path)
    assert (copied / "data.txt").read_text() == "line one\nline two\n"
    vm.succeed("rm -r /run/wst-dir /run/wst-flag")
