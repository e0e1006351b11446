"""Build and cache the test-host disk image (Debian bookworm, systemd as init, ws's runtime dependencies).

The image is keyed by a content hash of its recipe: this file, the guest files under ``guest/rootfs`` and
the pinned runtime requirements of the workspace. Code changes in ws do not change the key: the code under
test is built into wheels per session (:func:`build_code_share`) and installed at boot from a 9p share.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CACHE_DIR = Path(os.environ.get("WS_VM_CACHE", "/var/tmp/ws-vm-cache"))
GUEST_ROOTFS = Path(__file__).parent / "guest" / "rootfs"
GUEST_PYTHON = "3.11"  # bookworm's python3
GUEST_PLATFORM = "x86_64-manylinux_2_28"  # bookworm has glibc 2.36
GUEST_SITE = f"/opt/ws/lib/python{GUEST_PYTHON}/site-packages"
FOR_GUEST = ["--python-version", GUEST_PYTHON, "--python-platform", GUEST_PLATFORM]  # uv pip: wheels for the guest
# Installs are byte-compiled on the host (same 3.11 bytecode): compiling pydantic & co. in every fresh guest
# costs seconds per first `ws` run under TCG.
KEEP_UNUSED_DAYS = 3

PACKAGES = [
    "systemd-sysv",
    "dbus",
    "udev",
    "kmod",
    "linux-image-amd64",
    "initramfs-tools",
    "zstd",
    "systemd-container",
    "nftables",
    "iproute2",
    "wireguard-tools",
    "tinyproxy",
    "dnsmasq-base",
    "iputils-ping",
    "procps",
    "python3",
    "ca-certificates",
]
# Units the tests do not need: they only cost boot time under TCG.
MASKED_UNITS = [
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_reap.service",
    "e2scrub_all.timer",
    "fstrim.timer",
    "getty@tty1.service",
    "serial-getty@ttyS0.service",
    "systemd-networkd-wait-online.service",
    "dpkg-db-backup.timer",
    "systemd-tmpfiles-clean.timer",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
]
# Installed but not started at boot: the tests start what they need themselves.
DISABLED_UNITS = ["tinyproxy.service"]
ENABLED_UNITS = ["ws-backdoor.service", "ws-install.service", "mnt-xchg.mount", "systemd-networkd.service"]
EXCLUDED_PATHS = ["/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*"]
IMAGE_FILES = ("base.qcow2", "vmlinuz", "initrd.img")
IMAGE_SIZE = "6G"  # sparse; qcow2 stores only what is used


@dataclass(frozen=True)
class Image:
    """A built test-host image: a qcow2 base (never written to) plus the kernel and initrd inside it."""

    disk: Path
    kernel: Path
    initrd: Path
    build_seconds: float  # 0.0 when it came from the cache


def uv_binary(repo: Path) -> str:
    """uv: the one running us (``$UV``), the one on PATH, or the one scripts/bootstrap installed."""
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(repo / ".cache/uv-bootstrap/bin/uv")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("the vm test tier needs uv: run scripts/bootstrap (it installs uv) or put uv on PATH")


def runtime_requirements(repo: Path) -> str:
    """Pinned third-party requirements of ws and its plugins from uv.lock (the test tooling excluded)."""
    export = ["export", "--all-packages", "--no-dev", "--no-emit-workspace", "--no-hashes", "--frozen", "--no-header"]
    return _run([uv_binary(repo), *export], cwd=repo).stdout


def recipe_key(requirements: str) -> str:
    """Content hash of everything that goes into the image."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted(GUEST_ROOTFS.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(GUEST_ROOTFS)).encode())
            digest.update(oct(path.stat().st_mode & 0o777).encode())
            digest.update(path.read_bytes())
    digest.update(requirements.encode())
    return digest.hexdigest()[:16]


def ensure_image(repo: Path, cache_dir: Path = CACHE_DIR) -> Image:
    """Return the cached image for the current recipe, building it first if needed (serialized by a lock)."""
    check_tools(["mmdebstrap", "mkfs.ext4", "qemu-img"])
    requirements = runtime_requirements(repo)
    key = recipe_key(requirements)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / key
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        built = not all((target / name).exists() for name in ("done", *IMAGE_FILES))
        if built:
            _build(target, requirements, uv_binary(repo))
        os.utime(target)
        _prune(cache_dir, keep=target)
    disk, kernel, initrd = (target / name for name in IMAGE_FILES)
    return Image(disk, kernel, initrd, build_seconds=time.monotonic() - started if built else 0.0)


def build_code_share(repo: Path, share: Path) -> list[str]:
    """Build wheels of the workspace members from the checkout and install them into ``share/site``.

    The guest copies ``share/site`` into its /opt/ws venv at boot (ws-install.service), so the tests inside
    run the code under test. Returns the installed wheel file names.
    """
    wheels = share / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    uv = uv_binary(repo)
    _run([uv, "build", "--all-packages", "--wheel", "--quiet", "-o", str(wheels)], cwd=repo)
    members = sorted(str(w) for w in wheels.glob("*.whl") if not w.name.startswith("ws_testing-"))
    install = [uv, "pip", "install", "--quiet", "--no-deps", "--link-mode", "copy", "--compile-bytecode", *FOR_GUEST]
    _run([*install, "--target", str(share / "site"), *members], cwd=repo)
    return [Path(m).name for m in members]


def check_tools(tools: list[str]) -> None:
    """Fail with what to install when a host tool of this tier is missing (the tier never silently passes)."""
    packages = {
        "mmdebstrap": "mmdebstrap",
        "mkfs.ext4": "e2fsprogs",
        "qemu-img": "qemu-utils",
        "qemu-system-x86_64": "qemu-system-x86",
    }
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise RuntimeError(
            "the vm test tier needs "
            + ", ".join(missing)
            + "; install: "
            + " ".join(packages.get(t, t) for t in missing)
            + " (apt-get install ...)"
        )


def _build(target: Path, requirements: str, uv: str) -> None:
    """mmdebstrap a tree, add the Python runtime, then make an ext4 image from it without loop mounts."""
    work = target.with_name(target.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    root = work / "root"
    work.mkdir()
    (work / "requirements.txt").write_text(requirements)
    hooks = [
        'chroot "$1" python3 -m venv --without-pip /opt/ws',
        shlex.join([uv, "pip", "install", "--quiet", "--link-mode", "copy", "--compile-bytecode", *FOR_GUEST])
        + f' -r {shlex.quote(str(work / "requirements.txt"))} --target "$1"{shlex.quote(GUEST_SITE)}',
        'echo wsvm > "$1/etc/hostname"',
        'chroot "$1" systemctl enable ' + " ".join(ENABLED_UNITS),
        'chroot "$1" systemctl mask ' + " ".join(MASKED_UNITS),
        'chroot "$1" systemctl disable ' + " ".join(DISABLED_UNITS),
        'cp "$1"/boot/vmlinuz-* ' + shlex.quote(str(work / "vmlinuz")),
        'cp "$1"/boot/initrd.img-* ' + shlex.quote(str(work / "initrd.img")),
    ]
    command = [
        "mmdebstrap",
        "--variant=minbase",
        "--include=" + ",".join(PACKAGES),
        *(f"--dpkgopt=path-exclude={p}" for p in EXCLUDED_PATHS),
        f"--setup-hook=sync-in {GUEST_ROOTFS} /",
        *(f"--customize-hook={h}" for h in hooks),
        "bookworm",
        str(root),
    ]
    with open(work / "build.log", "w") as log:
        log.write(shlex.join(command) + "\n")
        log.flush()
        result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise RuntimeError(f"mmdebstrap failed (exit {result.returncode}); see {work / 'build.log'}")
    raw = work / "root.img"
    _run(["mkfs.ext4", "-q", "-L", "wsroot", "-d", str(root), str(raw), IMAGE_SIZE])
    _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(work / "base.qcow2")])
    raw.unlink()
    shutil.rmtree(root)
    (work / "done").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    work.rename(target)


def _prune(cache_dir: Path, keep: Path) -> None:
    """Drop images of older recipes nobody used for a few days (each is several hundred MiB)."""
    horizon = time.time() - KEEP_UNUSED_DAYS * 86400
    for entry in cache_dir.iterdir():
        if entry.is_dir() and entry != keep and entry.stat().st_mtime < horizon:
            shutil.rmtree(entry, ignore_errors=True)


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed (exit {result.returncode}):\n{result.stderr}")
    return result
