"""The provisioning bundle reaches the guest before its first boot through this boot's initrd.

The host cannot write into the qcow2 overlay without mounting it (no loop or nbd devices), so the files
travel with the boot instead: this boot's initrd is the image's initrd followed by a small uncompressed
cpio archive (the kernel unpacks concatenated archives in order) that adds

* ``/ws/provision.tar``: every bundle file with its numeric owner and mode, the workspace's SSH host key
  (qemu, running as the login user, cannot read the root-only key folder, so the key is not shared but
  delivered), ``/etc/fstab`` with the 9p shares, and ws's exec key in the login user's authorized keys;
* ``/scripts/ws``: selected by ``boot=ws`` on the kernel command line, Debian's initramfs sources it instead
  of ``/scripts/local``; its ``mountroot`` mounts the root file system as usual, then unpacks the archive
  into it with the guest's own tar, chrooted (so the image's symbolic links resolve inside the guest).

The initrd is written 0600 into the boot's run folder and deleted with the boot.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from collections.abc import Iterable
from pathlib import Path

from ws.provision import Bundle, IdMap, iter_files

from ws_plugin_microvm.hypervisor import Share

SCRIPT = """\
# ws-plugin-microvm: mount the root file system as usual, then put this boot's provisioning into it.
. /scripts/local
mountroot()
{
	local_mount_root
	if ! chroot "${rootmnt}" /usr/bin/tar --extract --file=- --directory=/ --same-permissions --same-owner \\
			--numeric-owner < /ws/provision.tar; then
		panic "ws: could not unpack the provisioning archive into the root file system"
	fi
}
"""
NINEP_OPTIONS = "trans=virtio,version=9p2000.L,msize=512000,access=client,nofail"


def fstab(shares: Iterable[Share]) -> str:
    lines = ["# Written by ws: the workspace's shared host folders (9p)."]
    for share in shares:
        options = NINEP_OPTIONS + (",ro" if share.read_only else "")
        guest_path = share.guest_path.replace("\\", "\\134").replace(" ", "\\040")  # fstab's escapes
        lines.append(f"{share.tag} {guest_path} 9p {options} 0 0")
    return "\n".join(lines) + "\n"


def provision_tar(bundle: Bundle, ids: IdMap, extra: Iterable[tuple[str, bytes, int]], exec_key: str | None) -> bytes:
    """The archive unpacked into the guest: bundle files, then ``extra`` root-owned ``(path, bytes, mode)``.
    ``exec_key`` (ws's own public key for ``ws exec``) is appended to the login user's authorized keys."""
    from ws.provision.ssh import AUTHORIZED_KEYS_DIR

    keys_path = f"{AUTHORIZED_KEYS_DIR}/{bundle.user.name}"
    entries = list(iter_files(bundle, ids))
    if exec_key is not None:
        if not any(path == keys_path for path, *_ in entries):
            entries.append((keys_path, b"", 0o644, 0, 0))
        entries = [
            (path, content + f"{exec_key.strip()} ws-exec\n".encode() if path == keys_path else content, mode, uid, gid)
            for path, content, mode, uid, gid in entries
        ]
    entries += [(path, content, mode, 0, 0) for path, content, mode in extra]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        now = time.time()
        for path, content, mode, uid, gid in entries:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid, info.mtime = len(content), mode, uid, gid, now
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def write_initrd(image_initrd: Path, archive: bytes, target: Path) -> None:
    """This boot's initrd: the image's, then the cpio with the script and the archive (mode 0600)."""
    target.unlink(missing_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, open(image_initrd, "rb") as source:
        while chunk := source.read(1 << 20):
            out.write(chunk)
        if out.tell() % 4:
            out.write(b"\0" * (4 - out.tell() % 4))
        added = [
            ("ws", 0o040700, b""),
            ("ws/provision.tar", 0o100600, archive),
            ("scripts/ws", 0o100644, SCRIPT.encode()),
        ]
        out.write(cpio(added))


def cpio(entries: Iterable[tuple[str, int, bytes]]) -> bytes:
    """An uncompressed ``newc`` archive of ``(name, mode with file type, content)``, root-owned."""
    out = io.BytesIO()
    for inode, (name, mode, content) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        fields = (inode, mode, 0, 0, 1, 0, len(content), 0, 0, 0, 0, len(encoded), 0)
        out.write(b"070701" + b"".join(f"{value:08x}".encode() for value in fields))
        out.write(encoded + b"\0" * (-(110 + len(encoded)) % 4))
        out.write(content + b"\0" * (-len(content) % 4))
    return out.getvalue() + b"\0" * (-out.tell() % 512)
