"""What an image is made of, and the content hash that names a build of it.

Two builds from equal recipes are interchangeable, so the hash of the recipe is the cache key: any change that
can change the image's content (suite, packages, extras, variant, architecture, what the builder does to the
tree) changes the hash and so causes a rebuild; nothing else does (the mirror, the time, the host).
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ws.errors import UsageError

if TYPE_CHECKING:
    from ws.config.model import CoreConfig

RECIPE_SCHEMA = 3
"""Bump when the builder changes the tree differently (hooks, excludes) so old builds stop matching."""

DEFAULT_IMAGE = "debian-bookworm"
IMAGES = {"debian-bookworm": "bookworm"}
"""ws's own images: name -> Debian suite. Any other ``image`` value is a backend-specific reference."""

VARIANT = "minbase"

BASE_PACKAGES = (
    # init, bus and name resolution the guest base relies on (networkd is part of systemd)
    "systemd", "systemd-sysv", "dbus", "libpam-systemd", "systemd-resolved", "udev",
    # login: sshd with host keys supplied by ws, doas instead of sudo
    "openssh-server", "openssh-client", "opendoas",
    # the tool set the original guests had
    "iproute2", "iputils-ping", "ca-certificates", "curl", "git", "tmux", "vim", "htop", "bind9-dnsutils",
    "kmod", "less", "procps", "netbase",
)  # fmt: skip

CLAUDE_CODE_PACKAGES = ("nodejs", "npm")
CLAUDE_CODE_NPM = "@anthropic-ai/claude-code"
CLAUDE_CODE_VERSION = "2.1.332"
"""Pinned: the version is part of the recipe (and so of the image hash), so a new release never slips into
an image unnoticed; a ws release raises it."""

DPKG_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
)
DPKG_INCLUDES = ("/usr/share/doc/*/copyright", "/usr/share/locale/locale.alias")
KERNEL_MODULE_EXCLUDES = tuple(
    f"{prefix}/modules/*/kernel/{part}/*"
    for prefix in ("/lib", "/usr/lib")  # bookworm's kernel ships under /lib, later ones under /usr/lib
    for part in (
        "drivers/gpu", "drivers/media", "drivers/net/wireless", "drivers/infiniband", "drivers/staging",
        "drivers/iio", "drivers/bluetooth", "drivers/isdn", "sound", "net/wireless", "net/bluetooth",
    )
)  # fmt: skip
"""Hardware a microVM never has; about a third of the kernel's modules."""

DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


@dataclass(frozen=True)
class Recipe:
    """Everything that decides an image's content. Build inputs that do not (mirror, time) stay out."""

    name: str
    suite: str
    architecture: str
    packages: tuple[str, ...]
    """Sorted and de-duplicated, so the order packages were listed in does not change the hash."""
    extras: tuple[str, ...] = ()
    """Non-apt additions, e.g. ``npm:@anthropic-ai/claude-code``."""
    with_kernel: bool = False
    variant: str = VARIANT
    dpkg_excludes: tuple[str, ...] = DPKG_EXCLUDES
    dpkg_includes: tuple[str, ...] = DPKG_INCLUDES
    schema: int = RECIPE_SCHEMA
    sources: Path | None = field(default=None, compare=False)
    """A build input, not content: ``[images] sources`` (None: the host's). Left out of the hash."""

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["sources"]
        return data

    @property
    def hash(self) -> str:
        """16 hex digits of sha256 over the canonical JSON of the recipe."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        tuples = ("packages", "extras", "dpkg_excludes", "dpkg_includes")
        return cls(**{key: tuple(value) if key in tuples else value for key, value in data.items()})


def is_ws_image(ref: str) -> bool:
    """True when ``image = ref`` names an image ws builds; backends resolve every other reference."""
    return ref in IMAGES


def host_architecture() -> str:
    """The Debian name of this machine's architecture (images are built for the host)."""
    machine = platform.machine()
    try:
        return DEB_ARCH[machine]
    except KeyError:
        raise UsageError(f"ws cannot build images for this machine's architecture {machine!r} yet") from None


def recipe_for(
    core: CoreConfig,
    name: str = DEFAULT_IMAGE,
    with_kernel: bool = False,
    extra_packages: tuple[str, ...] = (),
) -> Recipe:
    """The recipe the configuration asks for: the base set, ``[images] packages``, the agent's extras,
    and with ``with_kernel`` a Debian kernel (microVMs boot it; its vmlinuz and initrd are copied out)."""
    if not is_ws_image(name):
        known = ", ".join(sorted(IMAGES))
        raise UsageError(f"{name!r} is not an image ws builds (known: {known}); backends resolve other references")
    architecture = host_architecture()
    packages = set(BASE_PACKAGES) | set(core.images.packages) | set(extra_packages)
    extras: tuple[str, ...] = ()
    if core.agent.install_claude_code:
        packages |= set(CLAUDE_CODE_PACKAGES)
        extras = (f"npm:{CLAUDE_CODE_NPM}@{CLAUDE_CODE_VERSION}",)
    excludes = DPKG_EXCLUDES
    if with_kernel:
        packages.add(f"linux-image-{architecture}")
        excludes += KERNEL_MODULE_EXCLUDES
    return Recipe(
        name=name,
        suite=IMAGES[name],
        architecture=architecture,
        packages=tuple(sorted(packages)),
        extras=extras,
        with_kernel=with_kernel,
        dpkg_excludes=excludes,
        sources=core.images.sources,
    )
