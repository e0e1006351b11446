"""Who the login user inside every guest is.

The guest user mirrors the host user who owns the shared work folder (same uid/gid), so files written on
either side have the right owner. Only *public* keys are ever read from the host.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ws.errors import WsError
from ws.sshkeys import PUBLIC_KEY_PREFIXES, looks_public

DEFAULT_NAME = "dev"
DEFAULT_ID = 1000


@dataclass(frozen=True)
class LoginUser:
    """The resolved login user: every field is final, nothing is looked up later."""

    name: str
    uid: int
    gid: int
    home: str
    authorized_keys: tuple[str, ...]

    @property
    def workspace_dir(self) -> str:
        """Where the shared work folder appears in the guest."""
        return f"{self.home}/workspace"


def _host_account(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def resolve_login_user(
    user_config,
    environ: Mapping[str, str],
    *,
    account: Callable[[str], pwd.struct_passwd | None] = _host_account,
    euid: int | None = None,
) -> LoginUser:
    """Fill the gaps of ``[user]`` from the invoking user.

    Name: ``[user] name``, else ``SUDO_USER``, else the invoking (non-root) user, else ``dev``. Ids: the
    configured ones, else ``SUDO_UID``/``SUDO_GID``, else the host account of that name, else 1000.
    Keys: ``authorized_keys``, ``authorized_keys_file``, else the invoking user's ``~/.ssh/*.pub``.
    """
    euid = os.geteuid() if euid is None else euid
    sudo_user = environ.get("SUDO_USER") or None
    if sudo_user == "root":
        sudo_user = None
    invoker = sudo_user or (None if euid == 0 else _name_of_uid(euid))
    name = user_config.name or invoker or DEFAULT_NAME
    host = account(name) if (user_config.name or invoker) else None

    uid, gid = user_config.uid, user_config.gid
    if name == sudo_user:
        uid = uid or _int(environ.get("SUDO_UID"))
        gid = gid or _int(environ.get("SUDO_GID"))
    if host is not None:
        uid, gid = uid or host.pw_uid, gid or host.pw_gid
    uid, gid = uid or DEFAULT_ID, gid or DEFAULT_ID
    if uid == 0 or gid == 0:
        raise WsError(f"the login user {name!r} resolved to uid/gid {uid}/{gid}; set [user] uid and gid")

    return LoginUser(
        name=name,
        uid=uid,
        gid=gid,
        home=f"/home/{name}",
        authorized_keys=_authorized_keys(user_config, environ, invoker, account),
    )


def _authorized_keys(user_config, environ, invoker, account) -> tuple[str, ...]:
    if user_config.authorized_keys is not None:
        return tuple(_checked_keys(user_config.authorized_keys, "[user] authorized_keys"))
    if user_config.authorized_keys_file is not None:
        path = Path(user_config.authorized_keys_file)
        try:
            text = path.read_text()
        except OSError as exc:
            raise WsError(f"cannot read [user] authorized_keys_file {path}: {exc.strerror}") from None
        return tuple(_checked_keys(text.splitlines(), str(path)))
    home = _invoker_home(environ, invoker, account)
    if home is None:
        return ()
    keys: list[str] = []
    for pub in sorted((home / ".ssh").glob("*.pub")):
        try:
            lines = pub.read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        keys += [line.strip() for line in lines if line.strip().startswith(PUBLIC_KEY_PREFIXES)]
    return tuple(dict.fromkeys(keys))


def _checked_keys(lines, source: str) -> list[str]:
    """Keep key lines, refuse anything that is not a public key (a private key pasted by mistake)."""
    keys = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not looks_public(line):
            raise WsError(f"{source}: {line[:20]}... is not an SSH public key line")
        keys.append(line)
    return keys


def _invoker_home(environ, invoker, account) -> Path | None:
    if invoker:
        host = account(invoker)
        return Path(host.pw_dir) if host else None
    home = environ.get("HOME")
    return Path(home) if home else None


def _name_of_uid(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
