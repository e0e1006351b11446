"""``[nspawn]`` and ``[workspaces.NAME.nspawn]``: how long to wait, and the nspawn program.

The type's ``options_model``: core validates both sections with the configuration and hands the merged result
to the backend as ``workspace.options``. Imported only when the configuration is read (pydantic is heavy).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NspawnSettings(BaseModel):
    """Every key may be overridden per workspace."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    ready_timeout: float = Field(default=120.0, gt=0)
    """Seconds ``ws up`` waits for the guest's sshd to answer on the workspace address."""
    stop_timeout: float = Field(default=30.0, gt=0)
    """Seconds ``ws down`` waits for the guest to power off before killing it."""
    nspawn: str = "systemd-nspawn"
    """The systemd-nspawn program (a name on PATH or an absolute path)."""
