"""Host files ws writes for its workspaces: a managed block in /etc/hosts, ws's own known_hosts file and a
NetworkManager drop-in.

In files shared with others (/etc/hosts) ws owns only the lines between its marker comments; every other
byte stays as it was. Each configuration (state directory) has its own block, named in its markers, so
several configurations on one host (a user's and the test suite's) never rewrite or remove each other's
lines; a block without a name was written before blocks were named and belongs to the default state
directory. Files are replaced atomically (temporary file in the same folder, fsync, rename)
with the original's mode and owner, so a crash never leaves a half-written /etc/hosts. Every path is a
parameter so the logic is testable on temporary files.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ws.errors import WsError
from ws.provision.hostkey import PUBLIC_NAME
from ws.state import DEFAULT_STATE_DIR

BEGIN = b"# BEGIN ws managed block"
END = b"# END ws managed block"
DEFAULT_OWNER = str(DEFAULT_STATE_DIR)
"""The state directory that owns an unnamed block (see the module docstring)."""
BLOCK_NOTE = "# Written by ws; changes inside this block are overwritten."

HOSTS = Path("/etc/hosts")
NETWORKMANAGER = Path("/etc/NetworkManager")
NM_HEADER = "# Managed by ws: NetworkManager leaves the sandbox bridge and workspace interfaces alone.\n"


@dataclass(frozen=True)
class HostEntry:
    """One workspace as the host's name resolution and SSH see it."""

    hostname: str
    ip: str
    host_key: str | None = None
    """``ssh-ed25519 AAAA...`` (comment allowed), or None while no key exists yet."""


def known_hosts_path(state_dir: Path) -> Path:
    """ws's own known_hosts with every workspace's host key, used by ``ws ssh``."""
    return state_dir / "ssh" / "known_hosts"


def entries_for(workspaces: Iterable) -> list[HostEntry]:
    """HostEntry for each :class:`ws.types.Workspace`: the pinned host key, else the key ws generated in
    the workspace's ``ssh-host-keys`` folder (if it exists yet)."""
    result = []
    for ws in workspaces:
        key = ws.host_key
        if key is None:
            generated = ws.paths.ssh_host_keys / PUBLIC_NAME
            key = generated.read_text().strip() if generated.is_file() else None
        result.append(HostEntry(hostname=ws.hostname, ip=ws.ip, host_key=key))
    return result


def hosts_lines(entries: Iterable[HostEntry]) -> list[str]:
    return [f"{entry.ip} {entry.hostname}" for entry in sorted(entries, key=lambda e: e.hostname)]


def known_hosts_text(entries: Iterable[HostEntry]) -> str:
    """known_hosts lines binding each key to both the workspace's name and its address (no comments)."""
    lines = []
    for entry in sorted(entries, key=lambda e: e.hostname):
        if entry.host_key:
            key_type, key_data = entry.host_key.split()[:2]
            lines.append(f"{entry.hostname},{entry.ip} {key_type} {key_data}")
    return "".join(f"{line}\n" for line in lines)


def markers(owner: str | None) -> tuple[bytes, bytes]:
    """The begin and end lines of ``owner``'s block; None: the unnamed block."""
    if owner is None:
        return BEGIN, END
    name = f" ({owner})".encode()
    return BEGIN + name, END + name


def replace_block(text: bytes, lines: list[str], owner: str | None = None) -> bytes:
    """``text`` with ``owner``'s block holding ``lines`` (appended if absent; removed when ``lines`` is
    empty). The default owner also takes over an unnamed block.

    Bytes outside the block are kept exactly; a file without a final newline gains one before a new block.
    """
    begin, end_marker = markers(owner)
    start, end = _find_block(text, begin, end_marker)
    if start is None and owner == DEFAULT_OWNER:
        start, end = _find_block(text, BEGIN, END)
    block = b""
    if lines:
        body = "".join(f"{line}\n" for line in [BLOCK_NOTE, *lines]).encode()
        block = begin + b"\n" + body + end_marker + b"\n"
    if start is None:
        if not block:
            return text
        separator = b"\n" if text and not text.endswith(b"\n") else b""
        return text + separator + block
    return text[:start] + block + text[end:]


def _find_block(text: bytes, begin: bytes, end: bytes) -> tuple[int | None, int]:
    """(start, end) byte offsets of the block including its marker lines, or (None, 0)."""
    lines = text.splitlines(keepends=True)
    offset, start = 0, None
    for line in lines:
        stripped = line.rstrip(b"\r\n")
        if stripped == begin:
            if start is not None:
                raise WsError(f"two '{begin.decode()}' lines without an end marker; fix the file by hand")
            start = offset
        elif stripped == end and start is not None:
            return start, offset + len(line)
        offset += len(line)
    if start is not None:
        raise WsError(f"'{begin.decode()}' without '{end.decode()}'; fix the file by hand")
    return None, 0


def sync_block(path: Path, lines: list[str], owner: str | None = None) -> bool:
    """Make ``owner``'s block in ``path`` hold ``lines``; True when the file changed."""
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = b""
    new = replace_block(old, lines, owner)
    if new == old:
        return False
    write_atomic(path, new, mode=0o644)
    return True


def sync_file(path: Path, text: str, mode: int = 0o644) -> bool:
    """Make a file that ws owns entirely hold ``text``; True when it changed."""
    data = text.encode()
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, mode=mode)
    return True


def sync_host_files(
    entries: list[HostEntry], owner: str, hosts: Path = HOSTS, known_hosts: Path | None = None
) -> list[str]:
    """Bring ``owner``'s block in /etc/hosts and ws's known_hosts file in line with ``entries``; returns
    what changed."""
    changes = []
    if sync_block(hosts, hosts_lines(entries), owner):
        changes.append(f"updated ws block in {hosts}")
    text = known_hosts_text(entries)
    if known_hosts is not None and (text or known_hosts.exists()) and sync_file(known_hosts, text):
        changes.append(f"wrote {known_hosts}")
    return changes


def remove_host_files(owner: str, hosts: Path = HOSTS, known_hosts: Path | None = None) -> list[str]:
    """Drop ``owner``'s block from /etc/hosts and delete ws's known_hosts file."""
    changes = []
    if hosts.exists() and sync_block(hosts, [], owner):
        changes.append(f"removed ws block from {hosts}")
    if known_hosts is not None and known_hosts.exists():
        known_hosts.unlink()
        changes.append(f"removed {known_hosts}")
        if not any(known_hosts.parent.iterdir()):
            known_hosts.parent.rmdir()
    return changes


def networkmanager_text(bridge: str, patterns: Iterable[str] = ()) -> str:
    """``patterns`` are the backends' host interface names (``vm-*``, ``ve-*``, ...); ``veth*`` always."""
    names = [bridge, *sorted(set(patterns) - {"veth*"}), "veth*"]
    devices = ";".join(f"interface-name:{name}" for name in names)
    return f"{NM_HEADER}[keyfile]\nunmanaged-devices={devices}\n"


def sync_networkmanager(bridge: str, nm_dir: Path = NETWORKMANAGER, patterns: Iterable[str] = ()) -> list[str]:
    """Write the drop-in that keeps NetworkManager off ws's interfaces, only where NetworkManager is
    installed; one per bridge, so configurations with their own bridges keep their own drop-ins.
    NetworkManager reads it at its next start or ``nmcli general reload conf``."""
    if not nm_dir.is_dir():
        return []
    path = networkmanager_file(bridge, nm_dir)
    return [f"wrote {path}"] if sync_file(path, networkmanager_text(bridge, patterns)) else []


def remove_networkmanager(bridge: str, nm_dir: Path = NETWORKMANAGER) -> list[str]:
    """Delete the bridge's drop-in if it is ws's (starts with ws's header)."""
    path = networkmanager_file(bridge, nm_dir)
    try:
        if not path.read_text().startswith(NM_HEADER):
            return []
    except FileNotFoundError:
        return []
    path.unlink()
    return [f"removed {path}"]


def networkmanager_file(bridge: str, nm_dir: Path = NETWORKMANAGER) -> Path:
    return nm_dir / "conf.d" / f"ws-{bridge}.conf"


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix.

    Unlike :func:`ws.state.atomic_write` (for ws's own files) this is for files ws shares with the host:
    an existing file keeps its mode and owner; a new one gets ``mode``. A file that is a mount point
    itself (a bind-mounted /etc/hosts in a container) cannot be renamed over and is rewritten in place.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".ws-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), st.st_mode & 0o7777 if st else mode)
            if st and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(handle.fileno(), st.st_uid, st.st_gid)
            os.fsync(handle.fileno())
        try:
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.EXDEV):
                raise
            with open(path, "r+b") as handle:
                handle.write(data)
                handle.truncate()
                os.fsync(handle.fileno())
            os.unlink(tmp)
            return
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
