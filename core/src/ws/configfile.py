"""Which configuration file ws reads: a module of its own, so ``ws list`` can name the file (to check its
configuration snapshot) without importing the configuration package and pydantic."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

SYSTEM_CONFIG = "/etc/ws/ws.toml"


def find_config(explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """``--config``, else ``$WS_CONFIG``, else /etc/ws/ws.toml if it exists, else None (embedded)."""
    if explicit is not None:
        return explicit
    if environ.get("WS_CONFIG"):
        return environ["WS_CONFIG"]
    return SYSTEM_CONFIG if os.path.exists(SYSTEM_CONFIG) else None
