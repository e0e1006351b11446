"""Unit tier: without its tools the vm tier fails and says what to install; it never passes or skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ws_testing.image import check_tools

REPO = Path(__file__).resolve().parents[2]


def test_missing_tools_are_named_with_their_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError) as missing:
        check_tools(["qemu-system-x86_64", "qemu-img", "mmdebstrap"])
    assert "install: qemu-system-x86 qemu-utils mmdebstrap" in str(missing.value)


def test_a_vm_test_without_the_tools_fails_with_what_to_install(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "WS_VM_CACHE": str(tmp_path / "cache")}
    node = "tests/vm/test_test_host.py::test_systemd_is_pid1_with_a_system_bus_and_reaches_multi_user"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "vm", "-p", "no:cacheprovider", "-q", node],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout
    assert "1 error" in run.stdout and "passed" not in run.stdout and "skipped" not in run.stdout
    assert "the vm test tier needs mmdebstrap" in run.stdout and "apt-get install" in run.stdout
