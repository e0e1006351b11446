"""``ws doctor`` for Incus: is the server reachable, which version, is there a pool, can folders be shifted.

Checks are against the host-wide ``[incus]`` endpoint. When no workspace uses Incus, problems are
warnings (nothing is broken yet), otherwise failures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ws.errors import WsError
from ws.types import CheckStatus, DoctorCheck

if TYPE_CHECKING:
    from ws.context import Context

MIN_VERSION = (6, 0)


def checks(ctx: Context) -> list[DoctorCheck]:
    from ws_plugin_incus.backend import settings_for
    from ws_plugin_incus.client import connect

    used = any(w.type == "incus" for w in ctx.config.workspaces.values())
    bad = CheckStatus.FAIL if used else CheckStatus.WARN
    settings = settings_for(ctx)
    try:
        api = connect(settings)
    except WsError as exc:
        fix = "scripts/install-incus, then systemctl start incus (or scripts/start-incusd)"
        return [DoctorCheck("incus: server", bad, str(exc), "" if settings.remote else fix)]
    environment = api.info.get("environment", {})
    version = environment.get("server_version", "?")
    result = [DoctorCheck("incus: server", CheckStatus.OK, f"Incus {version} at {api.endpoint}")]
    if _version(version) < MIN_VERSION:
        result.append(DoctorCheck("incus: version", bad, f"Incus {version} is older than 6.0 LTS", "upgrade Incus"))
    if settings.project not in (None, "default"):
        result.append(_project_check(api, settings.project, bad))
    result.append(_pool_check(api, settings, bad))
    if environment.get("kernel_features", {}).get("idmapped_mounts") == "true":
        detail = "idmapped mounts supported: shared folders use shift=true"
        result.append(DoctorCheck("incus: idmap", CheckStatus.OK, detail))
    else:
        result.append(
            DoctorCheck(
                "incus: idmap",
                CheckStatus.WARN,
                "the kernel lacks idmapped mounts: shared folders are mapped with raw.idmap instead of shift=true",
                "allow root to map the login user: echo root:UID:1 >> /etc/subuid and root:GID:1 >> /etc/subgid",
            )
        )
    return result


def _project_check(api, project: str, bad: CheckStatus) -> DoctorCheck:
    """The project exists; with its own images (``features.images``) ws's image import and clean-up stay
    inside it (otherwise it shares the default project's images, whose instances the clean-up cannot see)."""
    try:
        config = (api.get(f"projects/{project}", "reading the project") or {}).get("config") or {}
    except WsError as exc:
        return DoctorCheck("incus: project", bad, str(exc), f"incus project create {project}")
    if config.get("features.images") != "true":
        return DoctorCheck(
            "incus: project", CheckStatus.WARN,
            f"project {project} shares the default project's images (features.images is not true): ws may "
            "remove an old ws image that an instance of another project was created from",
            f"incus project set {project} features.images=true (while the project has no images)",
        )  # fmt: skip
    return DoctorCheck("incus: project", CheckStatus.OK, f"project {project} with its own images")


def _pool_check(api, settings, bad: CheckStatus) -> DoctorCheck:
    try:
        if settings.storage_pool:
            api.get(f"storage-pools/{settings.storage_pool}", "reading the storage pool")
            return DoctorCheck("incus: storage", CheckStatus.OK, f"pool {settings.storage_pool}")
        profile = api.get("profiles/default", "reading the default profile") or {}
    except WsError as exc:
        return DoctorCheck("incus: storage", bad, str(exc), "incus storage create default dir")
    root = next(
        (d for d in (profile.get("devices") or {}).values() if d.get("type") == "disk" and d.get("path") == "/"), None
    )
    if root is None:
        return DoctorCheck(
            "incus: storage", bad, "the default profile has no root disk",
            "incus profile device add default root disk path=/ pool=default"
            + (f" --project {settings.project}" if settings.project else " (or run scripts/start-incusd)"),
        )  # fmt: skip
    return DoctorCheck("incus: storage", CheckStatus.OK, f"pool {root.get('pool')} (default profile)")


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(".")[:2])
    except ValueError:
        return (0,)
