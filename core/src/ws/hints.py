"""The one piece of first-party plugin knowledge core keeps: which distribution to install for a name.

Everything else about a backend or network (its types, aliases, ranges, options) comes from the plugin
itself once it is installed; this table only turns "no plugin provides X" into "install Y". Its order is
also the preference of the embedded default configuration's ``demo`` workspace (first installed first).
"""

from __future__ import annotations

from collections.abc import Iterable

INSTALL_HINTS: dict[str, str] = {
    "incus": "ws-plugin-incus",
    "nspawn": "ws-plugin-nspawn",
    "container": "ws-plugin-nspawn",
    "microvm": "ws-plugin-microvm",
    "vm": "ws-plugin-microvm",
    "vpn": "ws-plugin-pia",
    "pia": "ws-plugin-pia",
}
"""Workspace type, alias, network or configuration section -> the distribution that provides it."""


def install_hint(name: str) -> str | None:
    """``pip install`` advice for a first-party name, or None."""
    distribution = INSTALL_HINTS.get(name)
    return f"install {distribution} (pip install {distribution})" if distribution else None


def no_backend_hint() -> str:
    """What to say when no backend plugin is installed at all."""
    return f"no backend plugin is installed; {install_hint(next(iter(INSTALL_HINTS)))}"


def first_party_first(names: Iterable[str]) -> list[str]:
    """``names`` in this table's order (the first-party preference), the others after them."""
    names = list(dict.fromkeys(names))
    ranked = [name for name in INSTALL_HINTS if name in names]
    return ranked + [name for name in names if name not in ranked]
