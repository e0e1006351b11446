"""Where the PIA client keeps what must survive a restart, all under ``<state_dir>/pia/`` (0700) in files of
mode 0600: the cached token, the WireGuard private key, the current session and the port-forward signature.
The password is never written here."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ws.state import atomic_write


@dataclass(frozen=True)
class PiaPaths:
    root: Path

    @classmethod
    def under(cls, state_dir: Path) -> PiaPaths:
        return cls(state_dir / "pia")

    @property
    def state_dir(self) -> Path:
        """ws's state directory (the bridge's owner mark names it)."""
        return self.root.parent

    @property
    def token(self) -> Path:
        return self.root / "token.json"

    @property
    def private_key(self) -> Path:
        return self.root / "wg.key"

    @property
    def session(self) -> Path:
        return self.root / "session.json"

    @property
    def port_forward(self) -> Path:
        return self.root / "port-forward.json"

    @property
    def agent(self) -> Path:
        """The VPN agent's last report (state, last error, handshake age), read by ``ws vpn status``."""
        return self.root / "agent.json"


def write_private(path: Path, content: bytes) -> None:
    """Atomically write a root-only file (its folder is made root-only too)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    atomic_write(path, content, 0o600)


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_private(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> dict[str, Any] | None:
    """The stored record, or None when missing or unreadable (a damaged file is simply replaced)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
