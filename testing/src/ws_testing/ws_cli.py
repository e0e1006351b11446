"""The ``ws`` command line run as a subprocess against one test configuration, for the backends' root tiers.

Each root tier's environment (its state dir, bridge and configuration) mixes this in instead of carrying its
own copy of the runner: the environment is scrubbed of the caller's ``SUDO_*`` and ``WS_*`` variables, and only
the tier's plugin is loaded (``WS_PLUGINS``), so a test sees what that plugin alone gives.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

WS = Path(sys.executable).with_name("ws")


class WsCommands:
    """``ws`` for the configuration ``self.config`` with the plugin :attr:`plugin` alone."""

    config: Path
    plugin: ClassVar[str]
    command_timeout: ClassVar[float] = 300
    kept_variables: ClassVar[tuple[str, ...]] = ()
    """``WS_*`` variables of the caller passed on (e.g. a cache folder shared by the tier's sessions)."""

    def ws(self, *args: str, check: bool = True, timeout: float | None = None, **kwargs) -> subprocess.CompletedProcess:
        """Run ``ws ARGS``; fail the test with its output when it exits non-zero (unless ``check`` is off)."""
        result = subprocess.run(
            [str(WS), *args], capture_output=True, text=True, timeout=timeout or self.command_timeout,
            env=self.environ(), **kwargs,
        )  # fmt: skip
        if check and result.returncode != 0:
            pytest.fail(f"ws {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [str(WS), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.environ()
        )

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SUDO_", "WS_")) or k in self.kept_variables}
        return {**env, "WS_CONFIG": str(self.config), "WS_PLUGINS": self.plugin}
