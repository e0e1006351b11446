"""``ws doctor``'s look at the sandbox network: is ws's firewall in place, and does another firewall get
in its way? Read only: nft listings, sysfs and the guard's process record."""

from __future__ import annotations

from pathlib import Path

from ws.network import bridge, firewall
from ws.types import CheckStatus, DoctorCheck


def checks(network, state_dir: Path) -> list[DoctorCheck]:
    return [_firewall_check(network, state_dir), _foreign_forward_drop()]


def _firewall_check(network, state_dir: Path) -> DoctorCheck:
    from ws.network import sandbox

    name = "sandbox firewall"
    table = firewall.table_for(network.bridge)
    try:
        present = firewall.listing(table) is not None
    except Exception as exc:  # noqa: BLE001 - nft missing or broken is itself the finding
        return DoctorCheck(name, CheckStatus.FAIL, str(exc), "apt-get install nftables")
    if not (bridge.SYSFS_NET / network.bridge).exists():
        if present:
            return DoctorCheck(name, CheckStatus.OK, f"tables {table} present, bridge {network.bridge} not up")
        return DoctorCheck(name, CheckStatus.OK, f"network not up (bridge {network.bridge} absent)")
    if not present:
        return DoctorCheck(
            name, CheckStatus.FAIL,
            f"bridge {network.bridge} is up but nftables tables inet/bridge {table} are missing "
            "(flushed by `nft flush ruleset` or a firewall reload?)",
            "ws network up",
        )  # fmt: skip
    if not sandbox.guard_running(network, state_dir):
        return DoctorCheck(
            name, CheckStatus.WARN, f"tables {table} present but the guard that restores them is not running",
            "ws network up",
        )  # fmt: skip
    return DoctorCheck(name, CheckStatus.OK, f"tables {table} present, guard running")


def _foreign_forward_drop() -> DoctorCheck:
    """Docker sets ``iptables -P FORWARD DROP``: workspaces' forwarded traffic is then dropped there,
    whatever ws's table accepts (every base chain on a hook must accept a packet)."""
    name = "forwarding policy"
    result = firewall.run([firewall.NFT, "list", "chain", "ip", "filter", "FORWARD"])
    if result.returncode == 0 and "policy drop" in result.stdout:
        docker = "DOCKER" in result.stdout
        return DoctorCheck(
            name, CheckStatus.WARN,
            f"{'Docker set ' if docker else ''}chain ip filter FORWARD to policy drop: workspaces get no internet",
            "iptables -I DOCKER-USER -i <bridge> -j ACCEPT and -o <bridge> -m conntrack --ctstate "
            "RELATED,ESTABLISHED -j ACCEPT (see docs/network.md)",
        )  # fmt: skip
    return DoctorCheck(name, CheckStatus.OK, "no other firewall drops forwarded traffic by policy")
