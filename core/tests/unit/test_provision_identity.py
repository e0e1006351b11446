"""The workspace's SSH host key and the login user: generated/resolved once, and never a host secret."""

from __future__ import annotations

import base64
import json
import os
import pwd
import subprocess
from pathlib import Path

import pytest
from provision_support import make_workspace
from ws.config.model import CoreConfig, UserConfig
from ws.errors import WsError
from ws.provision import build_bundle, ensure_host_key, resolve_login_user
from ws.types import NetworkAttachment

PUB_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVzZXIta2V5LWEtZm9yLXdzLXRlc3RzLTAwMDAwMDAw a@host"
PUB_B = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCtest b@host"


def test_host_key_generated_once_and_kept(tmp_path):
    keys = tmp_path / "ssh-host-keys"
    public = ensure_host_key(keys)
    private = keys / "ssh_host_ed25519_key"
    assert public.startswith("ssh-ed25519 AAAA")
    assert private.stat().st_mode & 0o777 == 0o600
    assert (keys / "ssh_host_ed25519_key.pub").stat().st_mode & 0o777 == 0o644
    assert (keys / "ssh_host_ed25519_key.pub").read_text() == public + "\n"
    assert private.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(private)], capture_output=True, text=True, check=True)
    assert derived.stdout.split()[:2] == public.split()
    before = private.read_bytes()
    (keys / "ssh_host_ed25519_key.pub").unlink()
    assert ensure_host_key(keys) == public
    assert private.read_bytes() == before
    assert (keys / "ssh_host_ed25519_key.pub").read_text() == public + "\n"


def test_pinned_host_key_must_match_the_private_key(tmp_path):
    keys = tmp_path / "keys"
    public = ensure_host_key(keys)
    assert ensure_host_key(keys, pinned=public + " pinned-comment") == public
    other = ensure_host_key(tmp_path / "other")
    with pytest.raises(WsError, match="pinned host_key does not match the private key"):
        ensure_host_key(keys, pinned=other)
    with pytest.raises(WsError, match="host_key is pinned but there is no private key"):
        ensure_host_key(tmp_path / "empty", pinned=public)
    assert not (tmp_path / "empty" / "ssh_host_ed25519_key").exists()


def test_host_key_readable_by_others_is_refused(tmp_path):
    ensure_host_key(tmp_path)
    (tmp_path / "ssh_host_ed25519_key").chmod(0o644)
    with pytest.raises(WsError, match="readable by others"):
        ensure_host_key(tmp_path)


def _account(table: dict[str, tuple[int, int, str]]):
    def lookup(name: str):
        if name not in table:
            return None
        uid, gid, home = table[name]
        return pwd.struct_passwd((name, "x", uid, gid, "", home, "/bin/sh"))

    return lookup


def _home_with_keys(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh/id_ed25519.pub").write_text(PUB_A + "\n")
    (home / ".ssh/id_rsa.pub").write_text(PUB_B + "\n")
    (home / ".ssh/id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nPRIVATE-SECRET\n")
    (home / ".ssh/oops.pub").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nPRIVATE-SECRET\n")
    return home


def test_login_user_from_sudo(tmp_path):
    home = _home_with_keys(tmp_path)
    environ = {"SUDO_USER": "alice", "SUDO_UID": "1500", "SUDO_GID": "1501", "HOME": "/root"}
    user = resolve_login_user(UserConfig(), environ, account=_account({"alice": (1500, 1501, str(home))}), euid=0)
    assert (user.name, user.uid, user.gid, user.home) == ("alice", 1500, 1501, "/home/alice")
    assert user.authorized_keys == (PUB_A, PUB_B)
    assert user.workspace_dir == "/home/alice/workspace"


def test_login_user_plain_root_is_dev_1000_with_roots_public_keys(tmp_path):
    home = _home_with_keys(tmp_path)
    user = resolve_login_user(UserConfig(), {"HOME": str(home), "USER": "root"}, account=_account({}), euid=0)
    assert (user.name, user.uid, user.gid, user.home) == ("dev", 1000, 1000, "/home/dev")
    assert user.authorized_keys == (PUB_A, PUB_B)


def test_login_user_config_wins(tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# team keys\n{PUB_B}\n\n")
    config = UserConfig(name="bob", uid=2000, gid=2001, authorized_keys_file=keys_file)
    environ = {"SUDO_USER": "alice", "SUDO_UID": "1500", "SUDO_GID": "1501"}
    user = resolve_login_user(config, environ, account=_account({"bob": (7, 7, "/x")}), euid=0)
    assert (user.name, user.uid, user.gid, user.authorized_keys) == ("bob", 2000, 2001, (PUB_B,))
    named = resolve_login_user(UserConfig(name="carol"), {}, account=_account({"carol": (3000, 3001, "/h")}), euid=0)
    assert (named.uid, named.gid) == (3000, 3001)


def test_private_key_in_authorized_keys_file_is_refused(tmp_path):
    """(In ``authorized_keys`` itself the configuration refuses it: test_config_errors.)"""
    keys = tmp_path / "keys"
    keys.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    config = UserConfig(authorized_keys_file=keys)
    with pytest.raises(WsError, match="not an SSH public key"):
        resolve_login_user(config, {}, account=_account({}), euid=0)


def test_bundle_carries_no_host_credentials(tmp_path):
    """A host full of secrets (agent login, SSH private keys, netrc): none of it reaches the bundle."""
    home = _home_with_keys(tmp_path)
    (home / ".claude").mkdir()
    (home / ".claude/.credentials.json").write_text('{"token": "CLAUDE-SECRET"}')
    (home / ".claude.json").write_text('{"oauthAccount": "CLAUDE-ACCOUNT-SECRET"}')
    (home / ".netrc").write_text("machine x login y password NETRC-SECRET\n")
    (home / ".netrc").chmod(0o600)
    nix_conf = tmp_path / "nix.conf"
    nix_conf.write_text(f"substituters = https://c.example\nnetrc-file = {home / '.netrc'}\n")
    user = resolve_login_user(UserConfig(), {"HOME": str(home)}, account=_account({}), euid=0)
    attachment = NetworkAttachment("sandbox", "sandbox-br", "192.168.83.1", ("192.168.83.1",), 24)
    bundle = build_bundle(make_workspace(tmp_path), attachment, CoreConfig(), user, host_nix_conf=nix_conf)

    everything = b"".join(item.content for item in bundle.files) + json.dumps(bundle.to_dict()).encode()
    for secret in (b"PRIVATE-SECRET", b"CLAUDE-SECRET", b"CLAUDE-ACCOUNT-SECRET", b"NETRC-SECRET", b"PRIVATE KEY"):
        assert secret not in everything
    mounted = {m.host_path for m in bundle.mounts}
    # not even the host's netrc, which its nix.conf names: a credential is handed on only when configured
    assert mounted == {tmp_path / "workspace", tmp_path / "ssh-host-keys", tmp_path / "agent", Path("/srv/data")}
    assert all(not str(m.host_path).startswith(str(home / ".claude")) for m in bundle.mounts)
    assert PUB_A.encode() in everything


def test_host_key_temporary_files_are_not_predictable(tmp_path):
    """A file another process planted under the old pid-derived temporary name neither blocks nor redirects."""
    from ws.provision.hostkey import ensure_host_key

    keys = tmp_path / "keys"
    keys.mkdir()
    decoy = tmp_path / "decoy"
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"):
        (keys / f".{name}.tmp{os.getpid()}").symlink_to(decoy)
    public = ensure_host_key(keys, comment="workspace-dev")
    assert public.startswith("ssh-ed25519 ") and not decoy.exists()
    assert sorted(p.name for p in keys.iterdir() if not p.name.startswith(".")) == [
        "ssh_host_ed25519_key",
        "ssh_host_ed25519_key.pub",
    ]


def _keygen(path: Path, *options: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", "user's own key", *options, "-f", str(path)], check=True)
    path.chmod(0o600)


def test_a_host_key_made_by_ssh_keygen_is_read_as_ssh_keygen_reads_it(tmp_path):
    """The public half comes from the key file itself (no cryptography import): as ``ssh-keygen -y`` says."""
    keys = tmp_path / "keys"
    keys.mkdir()
    _keygen(keys / "ssh_host_ed25519_key", "-t", "ed25519")
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(keys / "ssh_host_ed25519_key")], capture_output=True, text=True
    )
    assert ensure_host_key(keys).split() == derived.stdout.split()[:2]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda key: _keygen(key, "-t", "rsa", "-b", "1024"), "is not an ed25519 key"),
        (lambda key: subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(key)], check=True),
         "cannot read .*encrypted"),
        (lambda key: key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"),
         "cannot read"),
        (lambda key: key.write_bytes(b"\xff not a key"), "cannot read"),
    ],
)  # fmt: skip
def test_host_keys_ssh_cannot_use_are_refused_with_a_sentence(tmp_path, make, message):
    key = tmp_path / "ssh_host_ed25519_key"
    make(key)
    key.chmod(0o600)
    with pytest.raises(WsError, match=message):
        ensure_host_key(tmp_path)


def test_a_host_key_whose_halves_disagree_is_refused(tmp_path):
    """The clear public key must be the one inside the private section (a spliced file is not used)."""
    ensure_host_key(tmp_path / "a")
    ensure_host_key(tmp_path / "b")
    a, b = ((tmp_path / name / "ssh_host_ed25519_key").read_text().splitlines() for name in ("a", "b"))
    raw_a, raw_b = base64.b64decode("".join(a[1:-1])), base64.b64decode("".join(b[1:-1]))
    # The outer public blob sits at the same offset in both (same lengths); take b's into a.
    start = raw_a.index(b"\x00\x00\x00\x0bssh-ed25519")
    spliced = raw_a[:start] + raw_b[start : start + 51] + raw_a[start + 51 :]
    body = base64.b64encode(spliced).decode()
    (tmp_path / "c").mkdir()
    key = tmp_path / "c" / "ssh_host_ed25519_key"
    key.write_text(f"{a[0]}\n{body}\n{a[-1]}\n")
    key.chmod(0o600)
    with pytest.raises(WsError, match="public key does not match"):
        ensure_host_key(tmp_path / "c")
