"""Unit tests of ws-plugin-microvm: the type as core sees it, qemu's command line, the machine choice, the
provisioning archive and the initrd it travels in, and ``[microvm]`` validation through ws's loader."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from ws.identity import mac_address, vsock_cid
from ws.plugins import PluginManager
from ws.provision import Bundle, IdMap, LoginUser
from ws.types import ProvisionFile
from ws_plugin_microvm import delivery
from ws_plugin_microvm.hypervisor import Share, VmSpec
from ws_plugin_microvm.plugin import plugin
from ws_plugin_microvm.qemu import SANDBOX, Qemu, supports_microvm


def _registry():
    manager = PluginManager(environ={"WS_PLUGINS": ""}).load(extra=[("microvm", plugin)])
    assert manager.registry.failed == []
    return manager.registry


def test_the_type_as_core_sees_it():
    wtype = _registry().workspace_type("vm")
    assert (wtype.name, wtype.ip_range, wtype.interface_prefix, wtype.image_format) == (
        "microvm",
        (10, 49),
        "vm-",
        "kernel",
    )
    assert wtype.uses_cid and wtype.mac_seed == "vm"
    # the origin's test vectors, through the seed the type declares
    assert mac_address(f"{wtype.mac_seed}-test-vm") == "02:b2:5d:f2:0a:a7"
    assert vsock_cid("test-vm") == 14719042


def _spec(**changes) -> VmSpec:
    values = dict(
        name="dev", kernel=Path("/k"), initrd=Path("/i"), cmdline="root=/dev/vda", disk=Path("/o.qcow2"), cpus=2,
        memory_mib=1024, accel="tcg", tcg_cache_mib=64, machine="q35", tap="vm-dev", mac="02:00:00:00:00:01",
        vhost_net=False, console_log=Path("/c.log"), control_socket=Path("/q.sock"), run_as=(1234, 1234), cid=None,
        shares=(Share("ws0", Path("/work"), "/home/u/workspace"), Share("ws1", Path("/ro"), "/data", read_only=True)),
    )  # fmt: skip
    values.update(changes)
    return VmSpec(**values)


def _option(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_qemu_drops_root_and_shares_with_mapped_xattr():
    argv = Qemu().command(_spec())
    assert _option(argv, "-runas") == ["1234:1234"]
    assert _option(argv, "-sandbox") == [SANDBOX] and "spawn=deny" in SANDBOX
    fsdevs = _option(argv, "-fsdev")
    assert all("security_model=mapped-xattr" in fsdev for fsdev in fsdevs)
    assert "readonly=on" in fsdevs[1] and "readonly=on" not in fsdevs[0]
    assert "virtio-9p-pci,fsdev=fs0,mount_tag=ws0" in _option(argv, "-device")
    assert "virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01" in _option(argv, "-device")
    assert _option(argv, "-netdev") == ["tap,id=net0,ifname=vm-dev,script=no,downscript=no,vhost=off"]
    assert _option(argv, "-accel") == ["tcg,tb-size=64"] and not any("vsock" in arg for arg in argv)
    assert "virtio-balloon-pci,free-page-reporting=on,deflate-on-oom=on" in _option(argv, "-device")


def test_microvm_machine_uses_mmio_devices_and_vsock_when_given():
    argv = Qemu().command(_spec(machine="microvm", accel="kvm", cid=14719042, vhost_net=True))
    assert _option(argv, "-machine")[0].startswith("microvm,")
    assert "vhost-vsock-device,guest-cid=14719042" in _option(argv, "-device")
    assert "virtio-blk-device,drive=root" in _option(argv, "-device")
    assert _option(argv, "-netdev")[0].endswith("vhost=on") and _option(argv, "-cpu") == ["host"]


def test_microvm_needs_virtio_mmio_and_acpi_in_the_kernel():
    assert supports_microvm("CONFIG_ACPI=y\nCONFIG_VIRTIO_MMIO=m\n")
    assert not supports_microvm("CONFIG_ACPI=y\n# CONFIG_VIRTIO_MMIO is not set\n")
    assert not supports_microvm("CONFIG_VIRTIO_MMIO=y\n")


def _bundle() -> Bundle:
    user = LoginUser("dev", 1234, 1234, "/home/dev", ("ssh-ed25519 AAAA user",))
    files = (
        ProvisionFile("/etc/ssh/authorized_keys/dev", b"ssh-ed25519 AAAA user\n"),
        ProvisionFile("/usr/local/lib/ws/firstboot", b"#!/bin/sh\n", mode=0o755),
        ProvisionFile("/etc/agent.conf", b"x", mode=0o600, owner="agent", group="agent"),
    )
    return Bundle("dev", user, files, (), ())


def test_the_archive_has_owners_modes_the_exec_key_and_extra_files():
    ids = IdMap.from_text("agent:x:321:321::/:/bin/false\n", "agent:x:321:\n")
    data = delivery.provision_tar(_bundle(), ids, [("/etc/fstab", b"tab\n", 0o644)], "ssh-ed25519 BBBB ws")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = {m.name: m for m in archive.getmembers()}
        keys = archive.extractfile("etc/ssh/authorized_keys/dev").read()
    assert keys == b"ssh-ed25519 AAAA user\nssh-ed25519 BBBB ws ws-exec\n"
    assert members["usr/local/lib/ws/firstboot"].mode == 0o755
    assert (members["etc/agent.conf"].uid, members["etc/agent.conf"].mode) == (321, 0o600)
    assert members["etc/fstab"].uid == 0 and set(members) == {
        "etc/ssh/authorized_keys/dev", "usr/local/lib/ws/firstboot", "etc/agent.conf", "etc/fstab",
    }  # fmt: skip


def test_fstab_lists_each_share_escaped():
    text = delivery.fstab([Share("ws0", Path("/w"), "/home/dev/my work"), Share("ws1", Path("/r"), "/r", True)])
    lines = text.splitlines()[1:]
    assert lines[0].startswith("ws0 /home/dev/my\\040work 9p trans=virtio,version=9p2000.L,")
    assert lines[1].split()[3].endswith(",ro") and "nofail" in lines[1]


def _read_cpio(data: bytes) -> dict[str, tuple[int, bytes]]:
    entries, offset = {}, 0
    while True:
        header = data[offset : offset + 110]
        assert header[:6] == b"070701"
        mode, size, name_size = (int(header[6 + 8 * i : 14 + 8 * i], 16) for i in (1, 6, 11))
        name = data[offset + 110 : offset + 110 + name_size - 1].decode()
        start = (offset + 110 + name_size + 3) & ~3
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, data[start : start + size])
        offset = (start + size + 3) & ~3


def test_the_initrd_is_the_image_initrd_followed_by_a_cpio_with_script_and_archive(tmp_path):
    image_initrd = tmp_path / "initrd.img"
    image_initrd.write_bytes(b"compressed-initrd-bytes")  # 23 bytes: padded to 24
    target = tmp_path / "boot-initrd"
    delivery.write_initrd(image_initrd, b"ARCHIVE", target)
    data = target.read_bytes()
    assert data.startswith(b"compressed-initrd-bytes\0") and target.stat().st_mode & 0o777 == 0o600
    entries = _read_cpio(data[24:])
    assert entries["ws/provision.tar"] == (0o100600, b"ARCHIVE")
    assert entries["scripts/ws"][1].decode() == delivery.SCRIPT and entries["ws"][0] == 0o040700
    assert "local_mount_root" in delivery.SCRIPT and "chroot" in delivery.SCRIPT


@pytest.mark.parametrize(
    ("section", "key_path"),
    [('[microvm]\naccel = "fast"\n', "microvm.accel"), ("", "workspaces.a.microvm.memory_mib")],
)
def test_microvm_options_are_validated_with_the_configuration(tmp_path, section, key_path):
    from click.testing import CliRunner
    from ws.cli.common import CliState
    from ws.cli.main import cli

    config = tmp_path / "ws.toml"
    config.write_text(
        f'state_dir = "{tmp_path}"\n{section}[workspaces.a]\ntype = "vm"\n[workspaces.a.microvm]\nmemory_mib = 12\n'
    )
    state = CliState(config_path=config, extra_plugins=[("microvm", plugin)])
    result = CliRunner().invoke(cli, ["config", "check"], obj=state, env={"WS_PLUGINS": ""})
    assert result.exit_code == 2, result.output
    assert key_path in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("accel", ["auto", "kvm", "tcg"])
def test_accel_values(accel):
    from ws_plugin_microvm.settings import MicrovmSettings

    assert MicrovmSettings(accel=accel).accel == accel


def test_doctor_names_qemu_kvm_vhost_and_virtiofsd(tmp_path):
    from click.testing import CliRunner
    from ws.cli.common import CliState
    from ws.cli.main import cli

    config = tmp_path / "ws.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[workspaces.a]\ntype = "vm"\n')
    state = CliState(config_path=config, extra_plugins=[("microvm", plugin)])
    result = CliRunner().invoke(cli, ["doctor", "--json"], obj=state, env={"WS_PLUGINS": ""})
    names = {check["name"] for check in json.loads(result.output)}
    expected = {"microvm: qemu", "microvm: KVM", "microvm: vhost-net", "microvm: vhost-vsock", "microvm: virtiofsd"}
    assert expected <= names, result.output


def test_a_boot_left_half_made_by_a_killed_up_is_reported_and_cleaned_by_down(tmp_path):
    """A ``ws up`` killed inside create leaves only the first record (no qemu ever ran): status says so and
    ``ws down`` deletes what the record names, after which the workspace is absent."""
    from click.testing import CliRunner
    from ws.cli.common import CliState
    from ws.cli.main import cli

    config = tmp_path / "ws.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[user]\nuid = 1234\ngid = 1234\n[workspaces.a]\ntype = "vm"\n')
    boot = tmp_path / "microvm" / "a"
    boot.mkdir(parents=True)
    (boot / "record.json").write_text(json.dumps({"workspace": "a", "image": "i@h", "base": "/b", "tap": "vm-a"}))
    (boot / "overlay.qcow2").write_bytes(b"left over")

    def ws(*args: str):
        state = CliState(config_path=config, extra_plugins=[("microvm", plugin)])
        return CliRunner().invoke(cli, list(args), obj=state, env={"WS_PLUGINS": ""})

    shown = json.loads(ws("status", "a", "--json").output)
    assert shown["state"] == "stopped" and "never started" in shown["detail"]
    result = ws("down", "a")
    assert result.exit_code == 0, result.output
    assert json.loads(ws("status", "a", "--json").output)["state"] == "absent"
    assert sorted(p.name for p in boot.iterdir()) == []
