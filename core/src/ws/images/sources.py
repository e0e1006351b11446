"""The apt sources an image is built from: the host's own, pointed at the image's suite.

ws names no mirror: it reuses the mirrors this Debian host already trusts (its deb822 ``.sources`` and
one-line ``.list`` files), rewriting the host's suite to the image's (``bookworm-updates`` becomes
``trixie-updates`` on a trixie host building a bookworm image, and so on). A host that is not Debian has no
such sources, so ``[images] sources`` names a deb822 file to use instead.
"""

from __future__ import annotations

import re
from pathlib import Path

from ws.errors import UsageError

ONE_LINE_OPTION_KEYS = {"arch": "Architectures", "lang": "Languages", "target": "Targets"}
DEB822_FIELDS = {name.lower(): name for name in ("Types", "URIs", "Suites", "Components", "Signed-By", "Enabled")}


def image_sources(suite: str, override: Path | None = None, etc: Path = Path("/etc")) -> str:
    """deb822 text for apt inside the build: ``override``'s content, or the host's sources for ``suite``."""
    if override is not None:
        try:
            return override.read_text()
        except OSError as exc:
            raise UsageError(f"cannot read [images] sources file {override}: {exc.strerror}") from None
    os_release = _os_release(etc / "os-release")
    if os_release.get("ID") != "debian" or not os_release.get("VERSION_CODENAME"):
        raise UsageError(
            "this host is not Debian, so ws cannot reuse its apt sources to build the image: install mmdebstrap "
            "and the Debian archive keyring, write a deb822 sources file naming a Debian mirror "
            f"(Types: deb, URIs: <mirror>, Suites: {suite} {suite}-updates, Components: main, Signed-By: "
            '<keyring>) and set [images] sources = "/path/to/that.sources" in ws.toml'
        )
    stanzas = [
        rewritten
        for stanza in _host_stanzas(etc / "apt")
        if (rewritten := _for_suite(stanza, os_release["VERSION_CODENAME"], suite))
    ]
    if not stanzas:
        raise UsageError(
            f"the host's apt sources under {etc / 'apt'} have no enabled 'deb' entry for "
            f"{os_release['VERSION_CODENAME']}; add one or set [images] sources in ws.toml"
        )
    for stanza in stanzas:
        if any(re.match(r"^[a-z+]+://[^/]*@", uri) for uri in stanza.get("URIs", "").split()):
            raise UsageError(
                "a host apt source has credentials in its URI, which would be copied into the image; "
                "set [images] sources to a file whose mirrors need none"
            )
    return "\n".join("".join(f"{key}: {value}\n" for key, value in stanza.items()) for stanza in stanzas)


def _os_release(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip().strip("\"'") for key, value in pairs}


def _host_stanzas(apt: Path) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    one_line = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if path.is_file():
            stanzas += [s for line in path.read_text().splitlines() if (s := _parse_one_line(line))]
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        stanzas += _parse_deb822(path.read_text())
    return stanzas


def _parse_deb822(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last_key = None
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, last_key = {}, None
        elif line[0] in " \t" and last_key:
            current[last_key] += "\n" + line  # continuation (e.g. an inline Signed-By key block)
        elif ":" in line:
            key, value = line.split(":", 1)
            last_key = _field_name(key.strip())
            current[last_key] = value.strip()
    return stanzas


def _parse_one_line(line: str) -> dict[str, str] | None:
    line = line.split("#", 1)[0].strip()
    match = re.match(r"^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
    if not match:
        return None
    kind, options, uri, suite, components = match.groups()
    stanza = {"Types": kind, "URIs": uri, "Suites": suite}
    if components:
        stanza["Components"] = " ".join(components.split())
    for option in (options or "").split():
        if "=" in option:
            key, value = option.split("=", 1)
            stanza[ONE_LINE_OPTION_KEYS.get(key, _field_name(key))] = value.replace(",", " ")
    return stanza


def _field_name(key: str) -> str:
    """deb822 field names are case-insensitive; write the usual spelling."""
    if key.lower() in DEB822_FIELDS:
        return DEB822_FIELDS[key.lower()]
    return "-".join(part[:1].upper() + part[1:] for part in key.lower().split("-"))


def _for_suite(stanza: dict[str, str], host_codename: str, suite: str) -> dict[str, str] | None:
    """The stanza with the host's suites mapped to ``suite``; None when nothing in it applies."""
    if "deb" not in stanza.get("Types", "").split() or stanza.get("Enabled", "yes").lower() == "no":
        return None
    suites = []
    for name in stanza.get("Suites", "").split():
        if name == host_codename or name.startswith(host_codename + "-"):
            suites.append(suite + name.removeprefix(host_codename))
    if not suites:
        return None
    return {**stanza, "Types": "deb", "Suites": " ".join(suites)}
