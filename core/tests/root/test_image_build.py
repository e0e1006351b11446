"""ws's image built by the real mmdebstrap (once per run, see the ``built_image`` fixture): its content, its
Incus metadata, the kernel for microVMs, the cache, the CLI, and what a killed build leaves behind."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from ws.config.model import CoreConfig
from ws.errors import WsError
from ws.images import current_image, ensure_image, list_images, recipe_for
from ws.images.store import clean_stale, images_dir

from .conftest import TEST_STATE

pytestmark = pytest.mark.root

WS = Path(sys.executable).with_name("ws")
KILL_TIMEOUT = 300


@pytest.fixture(scope="module")
def members(built_image) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(built_image.rootfs_tar) as tar:
        return {member.name.removeprefix("./").rstrip("/"): member for member in tar.getmembers()}


def read_member(built_image, name: str) -> bytes:
    with tarfile.open(built_image.rootfs_tar) as tar:
        return tar.extractfile("./" + name).read()


def test_rootfs_has_the_guest_base(members):
    for path in ("usr/sbin/sshd", "usr/bin/doas", "usr/bin/git", "usr/bin/tmux", "usr/bin/dig", "usr/sbin/modprobe"):
        assert path in members, f"{path} missing from the image"
        assert members[path].isfile() or members[path].issym()
    init = members["usr/sbin/init"]
    assert init.issym() and init.linkname.endswith("lib/systemd/systemd"), "systemd is /sbin/init"
    assert members["sbin"].issym() and members["sbin"].linkname == "usr/sbin", "merged /usr: /sbin is /usr/sbin"
    assert "usr/bin/sudo" not in members


def test_rootfs_is_generic(built_image, members):
    host_keys = [name for name in members if name.startswith("etc/ssh/ssh_host_")]
    assert host_keys == [], "ws supplies host keys; none may be baked into the image"
    assert members["etc/machine-id"].isfile() and read_member(built_image, "etc/machine-id") in (
        b"",
        b"uninitialized\n",
    )
    assert "var/lib/dbus/machine-id" not in members or members["var/lib/dbus/machine-id"].issym()
    assert "etc/hostname" not in members, "the build host's name must not leak into guests"
    assert members["etc/resolv.conf"].issym(), "resolv.conf is resolved's stub, not the host's copy"
    assert not [
        name for name in members if "resolv.conf" in name and name.startswith("etc/") and members[name].isfile()
    ]
    assert not [name for name, m in members.items() if name.startswith("etc/apt/auth.conf") and not m.isdir()]
    assert b"localhost" in read_member(built_image, "etc/hosts")
    assert not [name for name in members if name.startswith("usr/share/doc/") and not name.endswith("copyright")
                and members[name].isfile()], "docs are excluded (copyright files kept)"  # fmt: skip


def test_kernel_and_initrd_for_microvms(built_image, members):
    assert built_image.kernel is not None and built_image.initrd is not None
    kernel = built_image.kernel.read_bytes()
    assert kernel[0x202:0x206] == b"HdrS", "vmlinuz is a bzImage"
    assert built_image.initrd.stat().st_size > 1_000_000
    modules = [name for name in members if name.endswith(".ko")]
    assert any(name.endswith("/wireguard.ko") for name in modules), "VM tests need WireGuard as a module"
    assert any(name.endswith("/9p.ko") for name in modules), "qemu shares folders over 9p"
    assert not any("/kernel/drivers/gpu/" in name for name in modules), "hardware a microVM lacks is excluded"


def test_manifest_checksum_matches(built_image):
    import hashlib

    digest = hashlib.sha256()
    with built_image.rootfs_tar.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    assert built_image.manifest["files"]["rootfs.tar"]["sha256"] == digest.hexdigest()
    assert built_image.manifest["recipe"]["with_kernel"] is True


def test_second_ensure_is_a_cache_hit(built_image):
    def must_not_build(*_args):
        raise AssertionError("the cached image was rebuilt")

    recipe = recipe_for(CoreConfig(state_dir=TEST_STATE), with_kernel=True)
    mtime = built_image.rootfs_tar.stat().st_mtime_ns
    started = time.monotonic()
    again = ensure_image(TEST_STATE, recipe, build=must_not_build)
    elapsed = time.monotonic() - started
    assert again == built_image and not again.fresh and again.hash == built_image.hash
    assert elapsed < 2, f"a cache hit took {elapsed:.1f} s"
    assert again.rootfs_tar.stat().st_mtime_ns == mtime


def test_cli_lists_and_rebuilds_nothing(built_image, tmp_path):
    config = tmp_path / "ws.toml"
    config.write_text(f'state_dir = "{TEST_STATE}"\n')
    env = {**os.environ, "WS_PLUGINS": ""}
    listed = subprocess.run(
        [WS, "--config", config, "image", "list", "--json"], capture_output=True, text=True, env=env, check=True
    )
    entry = next(item for item in json.loads(listed.stdout) if item["hash"] == built_image.hash)
    assert entry["name"] == "debian-bookworm" and entry["current"] and entry["kernel"]
    assert entry["size"] == built_image.size and entry["created"] == built_image.created
    build = subprocess.run(
        [WS, "--config", config, "image", "build", "--kernel"], capture_output=True, text=True, env=env, check=True
    )
    assert "up to date (cached)" in build.stdout and built_image.hash in build.stdout


def test_stale_folder_with_mounts_is_unmounted_then_removed(tmp_path):
    """What a SIGKILLed mmdebstrap can leave: mounts inside its tree. Cleaning must detach them first."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = images_dir(tmp_path, "debian-bookworm") / f".tmp-0123456789abcdef-{dead.pid}"
    mount_point = stale / "tmp" / "mmdebstrap.x" / "proc"
    mount_point.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "wst-image", mount_point], check=True)
    try:
        (mount_point / "inside").write_text("on the mount")
        assert clean_stale(tmp_path, "debian-bookworm") == [stale]
        assert not stale.exists()
        assert str(mount_point) not in Path("/proc/self/mountinfo").read_text()
    finally:
        subprocess.run(["umount", "--lazy", mount_point], check=False, capture_output=True)


def test_killed_build_leaves_no_image_and_is_cleaned(tmp_path):
    """SIGKILL ``ws image build`` mid-way: no image appears, mmdebstrap stops (parent-death signal), and the
    next build's clean-up detaches what it left mounted and removes the temporary folder."""
    state = Path(f"/var/tmp/wst-image-{secrets.token_hex(3)}")
    config = tmp_path / "ws.toml"
    config.write_text(f'state_dir = "{state}"\n[images]\npackages = ["hello"]\n')
    try:
        process = subprocess.Popen(
            [WS, "--config", config, "image", "build"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "WS_PLUGINS": ""},
        )
        deadline = time.monotonic() + KILL_TIMEOUT
        for line in process.stderr:
            if "extracting essential packages" in line or time.monotonic() > deadline:
                break
        else:
            pytest.fail(f"the build ended before it could be killed (status {process.wait()})")
        process.send_signal(signal.SIGKILL)
        process.wait()
        folder = images_dir(state, "debian-bookworm")
        temp = [path for path in folder.iterdir() if path.name.startswith(".tmp-")]
        assert len(temp) == 1 and not [path for path in folder.iterdir() if not path.name.startswith(".")]
        _wait_for_no_process_using(temp[0])  # the parent-death signal stopped mmdebstrap: no orphan builds on
        recipe = recipe_for(CoreConfig.model_validate({"state_dir": str(state), "images": {"packages": ["hello"]}}))
        assert current_image(state, recipe) is None and list_images(state) == []
        assert clean_stale(state, "debian-bookworm") == temp and not temp[0].exists()
        assert str(state) not in Path("/proc/self/mountinfo").read_text(), "mounts left by mmdebstrap are detached"
    finally:
        _remove_state(state)


def _wait_for_no_process_using(folder: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        users = [pid for pid in os.listdir("/proc") if pid.isdigit() and _runs_in(pid, folder)]
        if not users:
            return
        time.sleep(0.5)
    raise WsError(f"processes still use {folder} after {timeout} s")


def _runs_in(pid: str, folder: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(folder) in cmdline


def _remove_state(state: Path) -> None:
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(str(state) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)
    shutil.rmtree(state, ignore_errors=True)
