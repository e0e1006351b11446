"""Guest provisioning: the one bundle of files, first-boot steps and mounts every backend delivers.

Backends use :func:`build_bundle` (through the Context, which adds the plugins' files), then
:func:`deliver_to_rootfs` or :func:`iter_files`, and :attr:`Bundle.mounts`; core calls
:func:`ensure_host_key` and :func:`resolve_login_user`. See docs/provisioning.md.
"""

from ws.provision.bundle import Bundle, build_bundle, guest_mounts
from ws.provision.deliver import IdMap, deliver_to_rootfs, iter_files
from ws.provision.hostkey import ensure_host_key
from ws.provision.steps import FirstBootStep
from ws.provision.user import LoginUser, resolve_login_user

__all__ = [
    "Bundle",
    "FirstBootStep",
    "IdMap",
    "LoginUser",
    "build_bundle",
    "deliver_to_rootfs",
    "ensure_host_key",
    "guest_mounts",
    "iter_files",
    "resolve_login_user",
]
