"""The provisioning bundle: every file's content and mode, delivery into a root file system, audit output.

The first-boot script itself runs for real in the root tier (tests/root/test_provision_boot.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from provision_support import USER_KEY, by_path, make_bundle, text
from ws.errors import WsError
from ws.provision import IdMap, deliver_to_rootfs, iter_files
from ws.types import Mount, ProvisionFile


def test_every_core_file_has_its_mode_and_root_owner(tmp_path):
    files = by_path(make_bundle(tmp_path))
    expected = {
        "/etc/systemd/network/10-ws.network": 0o644,
        "/etc/ssh/sshd_config.d/00-ws.conf": 0o644,
        "/etc/ssh/authorized_keys/alice": 0o644,
        "/etc/doas.conf": 0o644,
        "/usr/local/share/ws/claude.json": 0o644,
        "/usr/local/bin/claude": 0o755,
        "/usr/local/lib/ws/firstboot": 0o755,
        "/etc/systemd/system/ws-firstboot.service": 0o644,
        "/etc/systemd/system/multi-user.target.d/ws.conf": 0o644,
    }
    assert {path: item.mode for path, item in files.items()} == expected
    assert {(item.owner, item.group) for item in files.values()} == {("root", "root")}
    assert not any(item.secret for item in files.values())


def test_networkd_static_address_gateway_dns(tmp_path):
    assert text(make_bundle(tmp_path), "/etc/systemd/network/10-ws.network") == (
        "# Written by ws: the workspace's static address on its network.\n"
        "[Match]\n"
        "Name=host0 eth* en*\n"
        "\n"
        "[Link]\n"
        "MACAddress=02:00:00:00:00:01\n"  # the only MAC the host's bridge table lets the port send
        "MTUBytes=1500\n"
        "\n"
        "[Network]\n"
        "Address=192.168.83.50/24\n"
        "Gateway=192.168.83.1\n"
        "DNS=192.168.83.1\n"
        "DHCP=no\n"
        "LinkLocalAddressing=no\n"
        "IPv6AcceptRA=no\n"
    )


def test_sshd_only_the_workspace_host_key_and_public_keys(tmp_path):
    bundle = make_bundle(tmp_path)
    lines = text(bundle, "/etc/ssh/sshd_config.d/00-ws.conf").splitlines()
    settings = [line for line in lines if line and not line.startswith("#")]
    assert settings == [
        "HostKey /etc/ssh-host-keys/ssh_host_ed25519_key",
        "AuthorizedKeysFile /etc/ssh/authorized_keys/%u",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "PermitEmptyPasswords no",
    ]
    assert text(bundle, "/etc/ssh/authorized_keys/alice") == USER_KEY + "\n"


def test_doas_rule_and_sudo_only_as_fallback(tmp_path):
    bundle = make_bundle(tmp_path)
    assert text(bundle, "/etc/doas.conf") == "# Written by ws.\npermit nopass :wheel\n"
    script = text(bundle, "/usr/local/lib/ws/firstboot")
    assert "if ! command -v doas >/dev/null 2>&1; then" in script
    assert "printf '%%wheel ALL=(ALL:ALL) NOPASSWD: ALL\\n' > /etc/sudoers.d/ws-wheel.tmp" in script


def test_claude_json_exact_bytes_and_first_boot_copy(tmp_path):
    bundle = make_bundle(tmp_path)
    assert by_path(bundle)["/usr/local/share/ws/claude.json"].content == (
        b'{"hasCompletedOnboarding":true,"projects":{"/home/alice/workspace":'
        b'{"hasTrustDialogAccepted":true}},"theme":"dark"}'
    )
    script = text(bundle, "/usr/local/lib/ws/firstboot")
    assert (
        "if [ ! -e /home/alice/.claude.json ] && [ ! -L /home/alice/.claude.json ]; then\n"
        "    install -m 0600 -o 1234 -g 1235 /usr/local/share/ws/claude.json /home/alice/.claude.json\n"
    ) in script


def test_first_boot_creates_the_user_with_exact_ids_in_wheel(tmp_path):
    bundle = make_bundle(tmp_path)
    script = text(bundle, "/usr/local/lib/ws/firstboot")
    assert script.startswith("#!/bin/sh\n")
    assert "getent group wheel >/dev/null || groupadd --system wheel" in script
    assert "useradd -u 1234 -g 1235 -G wheel -d /home/alice -M -s /bin/bash -p '*' alice" in script
    assert "usermod -u" not in script  # would re-own the mounted work folder on the host
    assert [step.name for step in bundle.steps] == ["login-user", "sudo-fallback", "claude-config"]
    subprocess.run(["sh", "-n"], input=script.encode(), check=True)


def test_first_boot_unit_runs_before_sshd_and_is_pulled_in(tmp_path):
    bundle = make_bundle(tmp_path)
    unit = text(bundle, "/etc/systemd/system/ws-firstboot.service")
    assert "Before=ssh.service systemd-user-sessions.service\n" in unit
    assert "Type=oneshot\n" in unit and "ExecStart=/usr/local/lib/ws/firstboot\n" in unit
    assert "WantedBy=multi-user.target\n" in unit
    dropin = text(bundle, "/etc/systemd/system/multi-user.target.d/ws.conf")
    assert "Wants=ws-firstboot.service systemd-networkd.service systemd-resolved.service\n" in dropin


def _run_wrapper(tmp_path: Path, bundle, script: str, *args: str, path: str = "", home: str = "/nonexistent"):
    """Deliver the wrapper, put a fake 'real claude' in /usr/bin's place, and run ``script`` with the
    PATH a session without a login shell gets (sshd's default: /usr/local/bin before /usr/bin)."""
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    deliver_to_rootfs(bundle, rootfs, chown=False)
    local_bin, usr_bin = rootfs / "usr/local/bin", tmp_path / "usr-bin"
    wrapper = local_bin / "claude"
    wrapper.write_text(wrapper.read_text().replace("/usr/local/bin/claude", str(wrapper)))
    usr_bin.mkdir()
    (usr_bin / "claude").write_text('#!/bin/sh\necho "real claude: $*"\n')
    (usr_bin / "claude").chmod(0o755)
    env = {"PATH": path or f"{local_bin}:{usr_bin}:/usr/bin:/bin", "HOME": home}
    return subprocess.run(["sh", "-c", script, "sh", *args], env=env, capture_output=True, text=True, timeout=10)


def test_claude_wrapper_is_first_in_the_default_path_and_adds_skip_permissions(tmp_path):
    result = _run_wrapper(tmp_path, make_bundle(tmp_path), 'command -v claude; claude "$@"', "-p", "two words")
    assert result.returncode == 0, result.stderr
    which, output = result.stdout.splitlines()
    assert which == str(tmp_path / "rootfs/usr/local/bin/claude"), "no profile script needed"
    assert output == "real claude: --dangerously-skip-permissions -p two words"


def test_claude_wrapper_finds_the_native_installers_claude_and_says_when_there_is_none(tmp_path):
    home = tmp_path / "home"
    (home / ".local/bin").mkdir(parents=True)
    native = home / ".local/bin/claude"
    native.write_text('#!/bin/sh\necho "native claude: $*"\n')
    native.chmod(0o755)
    local_bin = tmp_path / "rootfs/usr/local/bin"
    only_wrapper = f"{local_bin}:/bin"
    result = _run_wrapper(tmp_path, make_bundle(tmp_path), 'claude "$@"', "x", path=only_wrapper, home=str(home))
    assert (result.returncode, result.stdout) == (0, "native claude: --dangerously-skip-permissions x\n")
    native.unlink()
    done = subprocess.run(
        [str(local_bin / "claude")], env={"PATH": only_wrapper, "HOME": str(home)}, capture_output=True, text=True
    )
    assert done.returncode == 127 and "the Claude Code CLI is not installed" in done.stderr


def test_no_wrapper_when_skip_permissions_is_off(tmp_path):
    bundle = make_bundle(tmp_path, {"agent": {"claude_skip_permissions": False}, "nix": {"inherit_host": False}})
    assert "/usr/local/bin/claude" not in by_path(bundle)
    assert "/usr/local/share/ws/claude.json" in by_path(bundle)


def _host_nix(tmp_path: Path) -> tuple[Path, Path]:
    netrc = tmp_path / "host-netrc"
    netrc.write_text("machine cache.example.org login ci password NETRC-SECRET-123\n")
    netrc.chmod(0o600)
    conf = tmp_path / "host-nix" / "nix.conf"
    conf.parent.mkdir()
    (conf.parent / "extra.conf").write_text("extra-trusted-public-keys = extra-1:BBBB=\n")
    conf.write_text(
        "# host settings\n"
        "substituters = https://cache.nixos.org/ https://cache.example.org\n"
        "extra-substituters = https://extra.example.org\n"
        "trusted-public-keys = cache.nixos.org-1:AAAA= cache.example.org-1:CCCC=\n"
        "include extra.conf\n"
        "!include missing.conf\n"
        f"netrc-file = {netrc}\n"
        "max-jobs = 8\n"
    )
    return conf, netrc


def test_nix_caches_inherited_from_host_but_never_the_host_s_netrc(tmp_path):
    conf, netrc = _host_nix(tmp_path)
    bundle = make_bundle(tmp_path, {}, host_nix_conf=conf)
    assert text(bundle, "/etc/nix/nix.conf") == (
        "# Written by ws: binary caches inherited from the host's Nix settings.\n"
        "substituters = https://cache.nixos.org/ https://cache.example.org https://extra.example.org\n"
        "trusted-public-keys = cache.nixos.org-1:AAAA= cache.example.org-1:CCCC= extra-1:BBBB=\n"
        "fallback = true\n"
    )
    assert not any(m.guest_path == "/etc/nix/netrc" for m in bundle.mounts)  # a credential: opt-in only


def test_netrc_only_when_configured_and_then_only_mounted(tmp_path):
    conf, netrc = _host_nix(tmp_path)
    bundle = make_bundle(tmp_path, {"nix": {"netrc_file": str(netrc)}}, host_nix_conf=conf)
    assert "netrc-file = /etc/nix/netrc\n" in text(bundle, "/etc/nix/nix.conf")
    assert Mount(netrc, "/etc/nix/netrc", read_only=True) in bundle.mounts
    assert all(b"NETRC-SECRET-123" not in item.content for item in bundle.files)


def test_nix_config_adds_to_host_and_none_without_either(tmp_path):
    conf, _ = _host_nix(tmp_path)
    config = {"nix": {"substituters": ["https://mine.example"], "trusted_public_keys": ["mine-1:DDDD="]}}
    nix_conf = text(make_bundle(tmp_path, config, host_nix_conf=conf), "/etc/nix/nix.conf")
    assert "substituters = https://mine.example https://cache.nixos.org/ " in nix_conf
    assert "trusted-public-keys = mine-1:DDDD= cache.nixos.org-1:AAAA=" in nix_conf
    bundle = make_bundle(tmp_path, {"nix": {"inherit_host": False}}, host_nix_conf=conf)
    assert "/etc/nix/nix.conf" not in by_path(bundle)
    assert not any(m.guest_path == "/etc/nix/netrc" for m in bundle.mounts)


def test_nix_configured_netrc_must_exist(tmp_path):
    with pytest.raises(WsError, match="netrc_file .* does not exist"):
        make_bundle(tmp_path, {"nix": {"netrc_file": str(tmp_path / "nope")}})


def test_mounts_every_backend_shares(tmp_path):
    bundle = make_bundle(tmp_path)
    assert bundle.mounts == (
        Mount(tmp_path / "workspace", "/home/alice/workspace"),
        Mount(tmp_path / "ssh-host-keys", "/etc/ssh-host-keys", read_only=True),
        Mount(tmp_path / "agent", "/home/alice/.claude"),
        Mount(Path("/srv/data"), "/data", read_only=True),
    )


def test_plugin_files_join_and_may_not_take_a_core_path(tmp_path):
    extra = ProvisionFile("/etc/ws-vpn/token", b"TOKEN-XYZ", mode=0o600, secret=True)
    bundle = make_bundle(tmp_path, extra_files=[extra])
    assert by_path(bundle)["/etc/ws-vpn/token"] == extra
    shown = json.dumps(bundle.to_dict())
    assert "TOKEN-XYZ" not in shown
    entry = next(f for f in bundle.to_dict()["files"] if f["path"] == "/etc/ws-vpn/token")
    assert entry == {"path": "/etc/ws-vpn/token", "mode": "0600", "owner": "root", "group": "root",
                     "size": 9, "secret": True, "content": None}  # fmt: skip
    with pytest.raises(WsError, match="two provisioning contributions write /etc/doas.conf"):
        make_bundle(tmp_path, extra_files=[ProvisionFile("/etc/doas.conf", b"permit nopass :users\n")])
    with pytest.raises(WsError, match="absolute"):
        make_bundle(tmp_path, extra_files=[ProvisionFile("etc/x", b"")])


def test_deliver_to_rootfs_modes_owners_and_contents(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nsvc:x:321:322::/:/bin/false\n")
    (rootfs / "etc/group").write_text("root:x:0:\nsvc:x:322:\n")
    extra = ProvisionFile("/etc/svc/conf", b"x=1\n", mode=0o640, owner="svc", group="svc")
    bundle = make_bundle(tmp_path, extra_files=[extra])
    as_root = os.geteuid() == 0
    deliver_to_rootfs(bundle, rootfs, chown=as_root)
    for item in bundle.files:
        target = rootfs / item.path.lstrip("/")
        assert target.read_bytes() == item.content
        assert target.stat().st_mode & 0o7777 == item.mode, item.path
        if as_root:
            expected = (321, 322) if item.owner == "svc" else (0, 0)
            assert (target.stat().st_uid, target.stat().st_gid) == expected, item.path
    assert (rootfs / "usr/local/lib/ws").stat().st_mode & 0o777 == 0o755
    assert not list(rootfs.rglob("*.ws-tmp"))
    deliver_to_rootfs(bundle, rootfs, chown=as_root)  # again: converges, no leftovers
    assert (rootfs / "etc/doas.conf").read_bytes() == b"# Written by ws.\npermit nopass :wheel\n"


def test_deliver_never_follows_guest_symlinks_out_of_the_rootfs(tmp_path):
    rootfs, outside = tmp_path / "rootfs", tmp_path / "outside"
    (rootfs / "usr/etc-ssh").mkdir(parents=True)
    outside.mkdir()
    (rootfs / "etc").mkdir()
    (rootfs / "etc/ssh").symlink_to("/usr/etc-ssh")  # absolute: means <rootfs>/usr/etc-ssh in the guest
    (rootfs / "usr/local").mkdir(parents=True)
    (rootfs / "usr/local/share").symlink_to(outside)  # would escape if followed on the host
    (rootfs / "etc/doas.conf").symlink_to(outside / "doas.conf")  # the file itself is a symlink
    deliver_to_rootfs(make_bundle(tmp_path), rootfs, chown=False)
    assert (rootfs / "usr/etc-ssh/sshd_config.d/00-ws.conf").is_file()
    assert (rootfs / str(outside).lstrip("/") / "ws" / "claude.json").is_file()
    assert not (rootfs / "etc/doas.conf").is_symlink()
    assert list(outside.iterdir()) == []


def test_iter_files_for_api_delivery_resolves_names_in_the_guest(tmp_path):
    extra = ProvisionFile("/etc/svc/conf", b"x", owner="svc", group="1999")
    bundle = make_bundle(tmp_path, extra_files=[extra])
    rows = list(iter_files(bundle, IdMap.from_text("svc:x:321:322::/:/bin/false\n")))
    assert rows[0] == ("/etc/systemd/network/10-ws.network", bundle.files[0].content, 0o644, 0, 0)
    assert rows[-1] == ("/etc/svc/conf", b"x", 0o644, 321, 1999)
    with pytest.raises(WsError, match="owner user 'svc' does not exist in the guest image"):
        list(iter_files(bundle))
