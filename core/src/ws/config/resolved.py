"""The validated configuration as commands and hooks see it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ws.config.model import CoreConfig
    from ws.types import Network, Workspace

EMBEDDED_SOURCE = "embedded default configuration"
"""``Config.source`` when no file was read."""


@dataclass(frozen=True)
class Config:
    """The validated configuration with every workspace resolved."""

    source: str
    """The file read, or the embedded default's name."""
    core: CoreConfig
    sections: dict[str, Any]
    """Plugin sections (``[pia]`` ...) and backend option sections (``[incus]``), validated by their models."""
    workspaces: dict[str, Workspace]
    networks: dict[str, Network]
    """The networks the workspaces use, and the sandbox, as their owners define them."""

    @property
    def file(self) -> Path | None:
        """The configuration file as an absolute path (what a unit or agent passes as ``--config``), or None
        for the embedded default."""
        return None if self.source == EMBEDDED_SOURCE else Path(self.source).resolve()
