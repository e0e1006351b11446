"""The login user inside the guest: exact uid/gid, ``wheel``, passwordless doas (sudo if doas is absent)."""

from __future__ import annotations

from ws.provision.steps import FirstBootStep
from ws.provision.user import LoginUser
from ws.types import ProvisionFile

DOAS_CONF = "/etc/doas.conf"
SUDOERS_FALLBACK = "/etc/sudoers.d/ws-wheel"


def doas_files() -> list[ProvisionFile]:
    return [ProvisionFile(DOAS_CONF, b"# Written by ws.\npermit nopass :wheel\n")]


def user_step(user: LoginUser) -> FirstBootStep:
    """Create the user with the host owner's ids. Existing accounts are never renumbered: ``usermod -u``
    would also re-own the mounted work folder on the host."""
    name, uid, gid, home = user.name, user.uid, user.gid, user.home
    script = f"""\
getent group wheel >/dev/null || groupadd --system wheel
if ! getent group {gid} >/dev/null; then
    if getent group {name} >/dev/null; then groupmod -g {gid} {name}; else groupadd -g {gid} {name}; fi
fi
if getent passwd {name} >/dev/null; then
    if [ "$(id -u {name})" != {uid} ]; then
        echo "ws-firstboot: user {name} exists with uid $(id -u {name}), not {uid}" >&2
        exit 1
    fi
    usermod -g {gid} -a -G wheel {name}
else
    holder=$(getent passwd {uid} | cut -d: -f1)
    if [ -n "$holder" ]; then
        echo "ws-firstboot: uid {uid} already belongs to $holder in the image" >&2
        exit 1
    fi
    useradd -u {uid} -g {gid} -G wheel -d {home} -M -s /bin/bash -p '*' {name}
fi
mkdir -p {home}
chown {uid}:{gid} {home}
chmod 0755 {home}
for src in /etc/skel/.[!.]* /etc/skel/*; do
    [ -e "$src" ] || continue
    dst={home}/"${{src##*/}}"
    [ -e "$dst" ] || [ -L "$dst" ] || {{ cp -a "$src" "$dst" && chown -R {uid}:{gid} "$dst"; }}
done
"""
    return FirstBootStep("login-user", f"user {name} ({uid}:{gid}) in wheel, home {home}", script)


def sudo_fallback_step() -> FirstBootStep:
    script = f"""\
if ! command -v doas >/dev/null 2>&1; then
    if [ -d /etc/sudoers.d ]; then
        printf '%%wheel ALL=(ALL:ALL) NOPASSWD: ALL\\n' > {SUDOERS_FALLBACK}.tmp
        chmod 0440 {SUDOERS_FALLBACK}.tmp
        mv -f {SUDOERS_FALLBACK}.tmp {SUDOERS_FALLBACK}
    else
        echo "ws-firstboot: neither doas nor sudo is installed; the login user has no root access" >&2
    fi
fi
"""
    return FirstBootStep("sudo-fallback", "passwordless sudo for wheel when the image has no doas", script)
