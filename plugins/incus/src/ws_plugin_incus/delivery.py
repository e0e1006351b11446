"""Delivering the provisioning bundle into the created, not yet started instance (Incus file API).

One ``POST .../files`` per file, with owner and mode in headers; a missing parent folder (404) is created
root-owned 0755 and the file pushed again, so folders that already exist in the image are never touched.
Owners given by name are looked up in the guest's own passwd/group, pulled only when a file needs it.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from ws_plugin_incus.errors import NotFound

if TYPE_CHECKING:
    from ws.provision import Bundle

    from ws_plugin_incus.client import Api


def deliver(api: Api, instance: str, bundle: Bundle, extra: list[tuple[str, bytes, int]] = ()) -> None:
    """Push every bundle file (and ``extra`` root-owned ``(path, content, mode)`` files) into ``instance``."""
    from ws.provision import IdMap, iter_files

    ids = _guest_ids(api, instance) if _needs_names(bundle) else IdMap()
    files = [*iter_files(bundle, ids), *((path, content, mode, 0, 0) for path, content, mode in extra)]
    for path, content, mode, uid, gid in files:
        push_file(api, instance, path, content, mode, uid, gid)


def push_file(api: Api, instance: str, path: str, content: bytes, mode: int, uid: int = 0, gid: int = 0) -> None:
    try:
        _push(api, instance, path, content, mode, uid, gid)
    except NotFound:
        _make_parents(api, instance, PurePosixPath(path).parent)
        _push(api, instance, path, content, mode, uid, gid)


def pull_file(api: Api, instance: str, path: str) -> bytes:
    doing = f"reading {path} from {instance}"
    return api.raw("get", f"instances/{instance}/files", doing, params={"path": path}, is_api=False).content


def _push(api: Api, instance: str, path: str, content: bytes, mode: int, uid: int, gid: int) -> None:
    headers = {
        "Content-Type": "application/octet-stream",
        "X-Incus-type": "file",
        "X-Incus-uid": str(uid),
        "X-Incus-gid": str(gid),
        "X-Incus-mode": f"{mode:04o}",
        "X-Incus-write": "overwrite",
    }
    api.request(
        "post", f"instances/{instance}/files", f"writing {path} into {instance}",
        params={"path": path}, data=content, headers=headers,
    )  # fmt: skip


def _make_parents(api: Api, instance: str, folder: PurePosixPath) -> None:
    """Create ``folder`` and its missing ancestors, outermost first (existing ones are left as they are)."""
    missing = []
    for candidate in (folder, *folder.parents):
        if str(candidate) == "/" or _exists(api, instance, str(candidate)):
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        headers = {"X-Incus-type": "directory", "X-Incus-uid": "0", "X-Incus-gid": "0", "X-Incus-mode": "0755"}
        api.request(
            "post", f"instances/{instance}/files", f"creating {candidate} in {instance}",
            params={"path": str(candidate)}, headers=headers,
        )  # fmt: skip


def _exists(api: Api, instance: str, path: str) -> bool:
    try:
        api.raw("get", f"instances/{instance}/files", f"checking {path} in {instance}", params={"path": path})
    except NotFound:
        return False
    return True


def _needs_names(bundle: Bundle) -> bool:
    return any(not _numeric(f.owner) or not _numeric(f.group) for f in bundle.files)


def _numeric(name: str) -> bool:
    return name == "root" or name.isdigit()


def _guest_ids(api: Api, instance: str):
    from ws.provision import IdMap

    passwd, group = (pull_file(api, instance, f"/etc/{name}").decode() for name in ("passwd", "group"))
    return IdMap.from_text(passwd, group)
