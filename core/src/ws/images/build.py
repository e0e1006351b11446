"""Build an image's files with mmdebstrap: ``rootfs.tar`` and, for microVMs, ``vmlinuz`` + ``initrd.img``.

The tree is made generic on purpose: no SSH host keys (ws supplies each workspace's own), an empty
machine-id (each guest makes its own on first boot), no host name and no copy of the host's resolv.conf.
"""

from __future__ import annotations

import collections
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from ws.errors import UsageError, WsError
from ws.images.progress import condense
from ws.images.recipe import CLAUDE_CODE_NPM, CLAUDE_CODE_VERSION, Recipe
from ws.images.sources import image_sources

ROOTFS = "rootfs.tar"
KERNEL = "vmlinuz"
INITRD = "initrd.img"
SOURCES = "debian.sources"
"""Passed to mmdebstrap as its MIRROR argument (a file is pasted in; the ``.sources`` suffix marks deb822)."""

Progress = Callable[[str], None]
BuildFunction = Callable[[Recipe, Path, Progress], None]
"""Writes the image's files into the given folder (``rootfs.tar``; ``vmlinuz`` and ``initrd.img`` when the
recipe asks for a kernel). The store adds the manifest around it."""

GENERIC_TREE_HOOKS = (
    'rm -f "$1"/etc/ssh/ssh_host_*',  # openssh-server's postinst made keys; ws mounts each guest's own
    'rm -f "$1"/etc/hostname',  # the build host's name; the backend or provisioning names the guest
    'rm -f "$1"/etc/.resolv.conf.systemd-resolved.bak',  # resolved's postinst kept the host's resolv.conf here
    r"""printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$1"/etc/hosts""",
)
# Hooks are single lines: mmdebstrap first tries each as a file name and warns about names with newlines.

HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
NPM_USER = "65534:65534"
"""nobody: npm runs as it in the chroot (the build runs as host root; npm and the package never do)."""
NPM_STAGING = "/tmp/ws-npm"
NPM_INSTALL_HOOK = "; ".join(
    (
        "set -e",
        # the tree's resolv.conf points at resolved's stub, which does not run in the chroot: borrow the host's
        'conf="$1/etc/resolv.conf"',
        'if [ -e "$conf" ] || [ -L "$conf" ]; then mv "$conf" "$conf.ws"; fi',
        'cp -L /etc/resolv.conf "$conf"',
        # trust what the host trusts for this download (a proxy's CA, say); removed again below
        f'if [ -f {HOST_CA} ]; then cp {HOST_CA} "$1/tmp/ws-host-ca.crt"; fi',
        f'mkdir "$1{NPM_STAGING}"',
        f'chown {NPM_USER} "$1{NPM_STAGING}"',
        # as nobody, into a staging prefix, with --ignore-scripts: no install script of the package or its
        # dependencies runs at all, and npm itself never runs as root on the build host
        f'chroot --userspec={NPM_USER} "$1" env HOME={NPM_STAGING} NODE_EXTRA_CA_CERTS=/tmp/ws-host-ca.crt '
        f"npm install --global --prefix {NPM_STAGING} --ignore-scripts --no-fund --no-audit --no-update-notifier "
        "{package}",
        # Claude Code's own postinstall puts its platform binary (an optional dependency) in place: it alone
        # runs, still as nobody and inside the staging prefix
        f'chroot --userspec={NPM_USER} "$1" env HOME={NPM_STAGING} '
        f"sh -c 'cd {NPM_STAGING}/lib/node_modules/{CLAUDE_CODE_NPM} && node install.cjs'",
        # then under /usr (/usr/bin/claude: /usr/local/bin/claude is ws's wrapper, ws.provision.agent.WRAPPER),
        # owned by root like a root install; only what was copied is chowned (a chown clears setuid bits)
        'mkdir -p "$1/usr/lib/node_modules"',
        f'for item in "$1{NPM_STAGING}/lib/node_modules/"*; do cp -a "$item" "$1/usr/lib/node_modules/"; '
        'chown -R 0:0 "$1/usr/lib/node_modules/$(basename "$item")"; done',
        f'for item in "$1{NPM_STAGING}/bin/"*; do cp -a "$item" "$1/usr/bin/"; '
        'chown -h 0:0 "$1/usr/bin/$(basename "$item")"; done',
        f'rm -rf "$1{NPM_STAGING}" "$1/tmp/ws-host-ca.crt" "$conf"',
        'if [ -e "$conf.ws" ] || [ -L "$conf.ws" ]; then mv "$conf.ws" "$conf"; fi',
    )
)

OUTPUT_TAIL_LINES = 30
STOP_TIMEOUT = 60


def mmdebstrap_command(recipe: Recipe, workdir: Path) -> list[str]:
    """The full mmdebstrap invocation for ``recipe`` writing into ``workdir`` (sources file already there)."""
    mode = "root" if os.geteuid() == 0 else "unshare"
    command = [
        "mmdebstrap",
        f"--mode={mode}",
        f"--variant={recipe.variant}",
        "--format=tar",
        f"--architectures={recipe.architecture}",
        f"--include={','.join(recipe.packages)}",
        *(f"--dpkgopt=path-exclude={path}" for path in recipe.dpkg_excludes),
        *(f"--dpkgopt=path-include={path}" for path in recipe.dpkg_includes),
        *(f"--customize-hook={hook}" for hook in GENERIC_TREE_HOOKS),
    ]
    for extra in recipe.extras:
        kind, _, package = extra.partition(":")
        if kind != "npm" or package != f"{CLAUDE_CODE_NPM}@{CLAUDE_CODE_VERSION}":
            raise WsError(f"this ws cannot build recipe extra {extra!r}")
        command.append(f"--customize-hook={NPM_INSTALL_HOOK.format(package=shlex.quote(package))}")
    if recipe.with_kernel:
        out = shlex.quote(str(workdir))
        command.append(f'--customize-hook=cp -L "$1"/vmlinuz {out}/{KERNEL} && cp -L "$1"/initrd.img {out}/{INITRD}')
    command += [recipe.suite, str(workdir / ROOTFS), str(workdir / SOURCES)]
    return command


def mmdebstrap_build(recipe: Recipe, workdir: Path, progress: Progress) -> None:
    """The real build. mmdebstrap's own temporary tree lives inside ``workdir`` (``TMPDIR``), so a killed
    build leaves nothing outside the folder the store cleans up."""
    if shutil.which("mmdebstrap") is None:
        raise UsageError(
            "mmdebstrap is not installed; ws builds its images with it: apt-get install mmdebstrap "
            "(on other distributions install mmdebstrap and the Debian archive keyring)"
        )
    (workdir / SOURCES).write_text(image_sources(recipe.suite, recipe.sources))
    (workdir / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(workdir / "tmp"), "LC_ALL": "C.UTF-8"}
    run_with_progress(mmdebstrap_command(recipe, workdir), env, progress)
    missing = [name for name in _expected_files(recipe) if not (workdir / name).is_file()]
    if missing:
        raise WsError(f"mmdebstrap finished but did not produce {', '.join(missing)} in {workdir}")
    shutil.rmtree(workdir / "tmp", ignore_errors=True)
    (workdir / SOURCES).unlink()


def run_with_progress(command: list[str], env: dict[str, str], progress: Progress) -> None:
    """Run ``command``, feeding each phase to ``progress``; on failure the error carries the output's tail.

    The child runs in its own session and is asked to stop (SIGTERM: mmdebstrap then unmounts and removes
    its tree) when ws is interrupted or dies.
    """
    tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        errors="replace",
        start_new_session=True,
        preexec_fn=_terminate_with_parent(),
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip())
            if (phase := condense(line)) is not None:
                progress(phase)
        returncode = process.wait()
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    if returncode != 0:
        output = "\n".join(f"  {line}" for line in tail)
        raise WsError(f"image build failed: {command[0]} exited with status {returncode}; its last output:\n{output}")


def _expected_files(recipe: Recipe) -> list[str]:
    return [ROOTFS, *([KERNEL, INITRD] if recipe.with_kernel else [])]


def _terminate_with_parent() -> Callable[[], None]:
    """What the child runs before exec: have the kernel SIGTERM it when ws dies, so no orphan keeps writing
    into a folder the next build will clean. Resolved here, in the parent: the child only calls it."""
    import ctypes
    import functools

    pr_set_pdeathsig = 1
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return functools.partial(prctl, pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
