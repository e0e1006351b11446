"""sshd inside the guest: the workspace's own host key only, public-key logins only."""

from __future__ import annotations

from ws.provision.hostkey import GUEST_PRIVATE
from ws.provision.user import LoginUser
from ws.types import ProvisionFile

SSHD_DROPIN = "/etc/ssh/sshd_config.d/00-ws.conf"
AUTHORIZED_KEYS_DIR = "/etc/ssh/authorized_keys"
"""Root-owned keys outside the home: the user cannot add keys that survive, and StrictModes is happy."""


def sshd_files(user: LoginUser) -> list[ProvisionFile]:
    """The sshd drop-in (first match wins, so ``00-`` beats image defaults) and the user's keys."""
    config = (
        "# Written by ws. The host key comes from the host (read-only mount), so it survives re-creation.\n"
        f"HostKey {GUEST_PRIVATE}\n"
        f"AuthorizedKeysFile {AUTHORIZED_KEYS_DIR}/%u\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "PermitEmptyPasswords no\n"
    )
    keys = "".join(f"{key}\n" for key in user.authorized_keys)
    return [
        ProvisionFile(SSHD_DROPIN, config.encode()),
        ProvisionFile(f"{AUTHORIZED_KEYS_DIR}/{user.name}", keys.encode()),
    ]
