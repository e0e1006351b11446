"""Derived identities: the formulas of origin.md, their test vectors, and the end-to-end derivation
through configuration resolution with the first-party type definitions."""

from __future__ import annotations

import re

from ws import identity

MAC = re.compile(r"^02(:[0-9a-f]{2}){5}$")


def test_mac_vectors_from_the_original() -> None:
    assert identity.mac_address("vm-test-vm") == "02:b2:5d:f2:0a:a7"
    assert identity.mac_address("incus-test-incus") == "02:61:5c:6a:41:36"


def test_mac_is_locally_administered_unicast_and_deterministic() -> None:
    for seed in ("vm-a", "incus-b", "nspawn-c", "x" * 100):
        mac = identity.mac_address(seed)
        assert MAC.match(mac), mac
        assert mac == identity.mac_address(seed)
    assert identity.mac_address("vm-a") != identity.mac_address("vm-b")


def test_cid_vector_and_range() -> None:
    assert identity.vsock_cid("test-vm") == 14719042
    for name in ("a", "dev", "zz-top", "0" * 60):
        assert 100 <= identity.vsock_cid(name) <= 100 + 0xFFFFFF <= 4294967294


def test_names() -> None:
    assert identity.hostname("dev") == "workspace-dev"
    assert identity.instance_name("dev") == "workspace-dev"


def test_resolve_derives_the_vectors_for_each_first_party_type(resolve_text) -> None:
    config = resolve_text(
        """
        [workspaces.test-vm]
        type = "vm"
        [workspaces.test-incus]
        type = "incus"
        [workspaces.box]
        type = "container"
        """
    )
    vm, incus, box = (config.workspaces[n] for n in ("test-vm", "test-incus", "box"))
    assert (vm.type, vm.mac, vm.cid) == ("microvm", "02:b2:5d:f2:0a:a7", 14719042)
    assert (vm.host_interface, vm.hostname, vm.instance_name) == (
        "vm-test-vm",
        "workspace-test-vm",
        "workspace-test-vm",
    )
    assert (incus.type, incus.mac, incus.cid) == ("incus", "02:61:5c:6a:41:36", None)
    assert incus.instance_name == "workspace-test-incus"
    assert (box.type, box.host_interface, box.cid) == ("nspawn", "ve-box", None)
    assert box.mac == identity.mac_address("nspawn-box")  # no mac_seed: the type name is the seed


def test_explicit_cid_wins_over_the_derived_one(resolve_text) -> None:
    config = resolve_text(
        """
        [workspaces.test-vm]
        type = "microvm"
        cid = 3
        """
    )
    assert config.workspaces["test-vm"].cid == 3


def test_identities_survive_a_config_change(resolve_text) -> None:
    """Re-creating with other settings keeps MAC, CID and names (no stale ARP, same known_hosts entry)."""
    first = resolve_text('[workspaces.dev]\ntype = "vm"\n').workspaces["dev"]
    second = resolve_text('[workspaces.dev]\ntype = "vm"\nmemory = "8G"\ncpus = 4\n').workspaces["dev"]
    assert (first.mac, first.cid, first.hostname, first.ip) == (second.mac, second.cid, second.hostname, second.ip)
    assert second.memory_mib == 8192
