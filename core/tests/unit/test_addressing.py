"""Automatic addresses: inside the type's range, stable across runs, kept by leases when workspaces are
added, never on an explicit address, and a clear error when the range is full."""

from __future__ import annotations

import hashlib
import ipaddress

import pytest
from ws.errors import ConfigError
from ws.state import read_leases, write_leases

RANGES = {"vm": (10, 49), "container": (50, 89), "incus": (90, 129)}


def host_number(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip)) & 0xFF


def workspaces_toml(*specs: tuple[str, str], extra: str = "") -> str:
    return "".join(f'[workspaces.{name}]\ntype = "{wtype}"\n{extra}' for name, wtype in specs)


@pytest.mark.parametrize("wtype", sorted(RANGES))
def test_auto_address_is_in_the_types_range(resolve_text, wtype: str) -> None:
    names = [f"w{i}" for i in range(12)]
    config = resolve_text(workspaces_toml(*((n, wtype) for n in names)))
    numbers = [host_number(config.workspaces[n].ip) for n in names]
    first, last = RANGES[wtype]
    assert all(first <= n <= last for n in numbers), numbers
    assert len(set(numbers)) == len(numbers)
    assert all(config.workspaces[n].ip.startswith("192.168.83.") for n in names)


def test_same_result_on_every_run(resolve_text) -> None:
    text = workspaces_toml(("a", "vm"), ("b", "vm"), ("c", "incus"))
    first = {n: w.ip for n, w in resolve_text(text).workspaces.items()}
    second = {n: w.ip for n, w in resolve_text(text).workspaces.items()}
    assert first == second


def _hash_slot(name: str, first: int, last: int) -> int:
    return first + int(hashlib.sha256(name.encode()).hexdigest(), 16) % (last - first + 1)


def test_lease_keeps_an_address_when_a_new_workspace_would_take_it(resolve_text, state_dir) -> None:
    """Without the lease, a new workspace sorted earlier with the same hash slot would push it aside."""
    old = "zeta"
    ip_old = resolve_text(workspaces_toml((old, "vm"))).workspaces[old].ip
    slot = host_number(ip_old)
    newcomer = next(f"a{i}" for i in range(10_000) if _hash_slot(f"a{i}", 10, 49) == slot)
    both = workspaces_toml((newcomer, "vm"), (old, "vm"))

    unleased = resolve_text(both).workspaces
    assert unleased[newcomer].ip == ip_old and unleased[old].ip != ip_old  # the problem leases solve

    write_leases(state_dir, {old: ip_old})  # what `ws up zeta` recorded
    leased = resolve_text(both).workspaces
    assert leased[old].ip == ip_old
    assert leased[newcomer].ip != ip_old and 10 <= host_number(leased[newcomer].ip) <= 49


def test_auto_address_avoids_explicit_ones(resolve_text) -> None:
    wanted = resolve_text(workspaces_toml(("auto", "vm"))).workspaces["auto"].ip
    config = resolve_text(workspaces_toml(("auto", "vm")) + f'[workspaces.fixed]\ntype = "vm"\nip = "{wanted}"\n')
    assert config.workspaces["fixed"].ip == wanted
    assert config.workspaces["auto"].ip != wanted


def test_lease_on_an_address_now_taken_explicitly_is_not_used(resolve_text, state_dir) -> None:
    write_leases(state_dir, {"auto": "192.168.83.20"})
    config = resolve_text(workspaces_toml(("auto", "vm")) + '[workspaces.fixed]\ntype = "vm"\nip = "192.168.83.20"\n')
    assert config.workspaces["auto"].ip != "192.168.83.20"


def test_unusable_leases_are_ignored(resolve_text, state_dir) -> None:
    write_leases(state_dir, {"a": "10.9.9.9", "b": "192.168.83.1"})  # outside the subnet; the host's address
    config = resolve_text(workspaces_toml(("a", "vm"), ("b", "vm")))
    assert {host_number(w.ip) for w in config.workspaces.values()} <= set(range(10, 50))
    (state_dir / "leases.json").write_text("{not json")
    assert read_leases(state_dir) == {}
    assert resolve_text(workspaces_toml(("a", "vm"))).workspaces["a"].ip


def test_range_exhausted_is_an_error_per_workspace(resolve_text) -> None:
    names = [f"vm{i}" for i in range(41)]  # the microvm range .10-.49 has 40 addresses
    with pytest.raises(ConfigError) as caught:
        resolve_text(workspaces_toml(*((n, "vm") for n in names)))
    messages = [str(p) for p in caught.value.problems]
    assert len(messages) == 1, messages
    assert "no free address left in the microvm range .10-.49" in messages[0]
    assert messages[0].startswith("workspaces.vm")


def test_range_outside_a_small_subnet_asks_for_an_explicit_ip(resolve_text) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_text('[network]\nsubnet = "10.1.0.0/28"\n' + workspaces_toml(("dev", "incus")))
    assert [p.location for p in caught.value.problems] == ["workspaces.dev.ip"]
    assert "does not fit 10.1.0.0/28" in caught.value.problems[0].message


def test_auto_address_follows_a_custom_subnet(resolve_text) -> None:
    config = resolve_text('[network]\nsubnet = "10.20.0.0/16"\n' + workspaces_toml(("dev", "vm")))
    ip = ipaddress.IPv4Address(config.workspaces["dev"].ip)
    assert ip in ipaddress.IPv4Network("10.20.0.0/16") and 10 <= int(ip) - int(ipaddress.IPv4Address("10.20.0.0")) <= 49
    assert config.workspaces["dev"].prefixlen == 16
