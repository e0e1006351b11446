"""Cross-field checks of workspaces that need no plugin: mount targets and names that collide.

Called from :func:`ws.config.resolve.resolve`; every problem names its key, so the CLI exits 2 with a
sentence instead of ws failing later (or a backend overwriting something).
"""

from __future__ import annotations

import posixpath
import re

from ws.config.model import CoreConfig
from ws.errors import ConfigProblem

OWN_GUEST_PATHS = ("/etc/ssh-host-keys",)
"""ws's own mount points in every guest besides the login user's work and agent folders."""
HOME_MOUNTS = re.compile(r"^/home/[^/]+/(workspace|\.claude)$")
"""The work and agent folders of whichever login user ws resolves (the name may come from sudo)."""
HELPER_SUFFIXES = ("-next", "-old-")
"""Backends name helper instances ``workspace-NAME-next`` and ``workspace-NAME-old-XXXXXX``."""


def check_workspaces(core: CoreConfig, problems: list[ConfigProblem]) -> None:
    for name, spec in sorted(core.workspaces.items()):
        seen: dict[str, int] = {}
        for index, mount in enumerate(spec.mounts):
            where = f"workspaces.{name}.mounts.{index}.guest"
            target = posixpath.normpath(mount.guest)
            if target == "/":
                problems.append(ConfigProblem(where, "a mount cannot replace the guest's root file system '/'"))
            elif target in OWN_GUEST_PATHS or HOME_MOUNTS.match(target):
                problems.append(ConfigProblem(where, f"{target} is one of ws's own mounts (work, agent, host keys)"))
            elif target in seen:
                problems.append(ConfigProblem(where, f"{target} is also the guest path of mounts.{seen[target]}"))
            seen.setdefault(target, index)
        for other in core.workspaces:
            if other != name and any(name.startswith(other + suffix) for suffix in HELPER_SUFFIXES):
                problems.append(
                    ConfigProblem(
                        f"workspaces.{name}",
                        f"the name collides with the helper instances of workspace {other!r} "
                        f"({other}-next, {other}-old-...); choose another name",
                    )
                )
