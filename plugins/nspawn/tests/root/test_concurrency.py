"""Several workspaces at once, and conflicts that must be a sentence, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

WS = Path(sys.executable).with_name("ws")

pytestmark = pytest.mark.root


def test_four_workspaces_start_in_parallel_with_their_own_id_ranges(nsenv):
    names = [nsenv.name(f"par{i}") for i in range(1, 5)]
    processes = [nsenv.popen("up", name) for name in names]  # four ws processes, as four users would
    for process in processes:
        _out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    try:
        shifts = {nsenv.record(name)["uid_shift"] for name in names}
        assert len(shifts) == 4
        addresses = {nsenv.status(name)["ip"] for name in names}
        assert len(addresses) == 4
        for name in names:
            result = nsenv.ssh(name, "hostname")
            assert result.returncode == 0 and result.stdout.strip() == f"workspace-{name}", result.stderr
    finally:
        nsenv.ws("down", *names)
    for name in names:
        assert nsenv.leftovers(name) == []


def test_an_address_conflict_is_a_sentence(nsenv):
    first, second = nsenv.name("par1"), nsenv.name("par2")
    config = nsenv.config.read_text()
    clash = f"{nsenv.subnet_prefix}.60"
    for name in (first, second):
        config = config.replace(
            f'[workspaces.{name}]\ntype = "nspawn"', f'[workspaces.{name}]\ntype = "nspawn"\nip = "{clash}"'
        )
    bad = nsenv.config.with_name("clash.toml")
    bad.write_text(config)
    result = subprocess.run(
        [str(WS), "up", first], capture_output=True, text=True, env={**nsenv.environ(), "WS_CONFIG": str(bad)}
    )
    assert result.returncode == 2
    assert clash in result.stderr and "Traceback" not in result.stderr


def test_a_name_taken_by_a_foreign_interface_is_a_sentence(nsenv):
    name = nsenv.name("par3")
    subprocess.run(["ip", "link", "add", f"vb-{name}", "type", "bridge"], check=True)
    try:
        result = nsenv.ws("up", name, check=False)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr and f"vb-{name}" in result.stderr
        assert (
            f"vb-{name}" in subprocess.run(["ip", "link", "show", f"vb-{name}"], capture_output=True, text=True).stdout
        )
    finally:
        subprocess.run(["ip", "link", "delete", f"vb-{name}"], check=False)
        nsenv.ws("down", name)
    assert nsenv.leftovers(name) == []
