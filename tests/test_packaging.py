"""What ``pip install ws-plugin-incus`` gives a user: the wheels of this checkout, installed with pip into a fresh
virtual environment while the normal package index stays reachable.

The index has an unrelated project called ``ws`` (a web crawler); a plugin that depended on that name would
pull it in. The test proves the dependency resolves to this repository's core (``ws-core``), that the crawler
is not installed, and that the installed ``ws`` finds the Incus backend through its entry point.

Root tier: it needs the real package index and takes tens of seconds (wheel builds, a venv, pip resolving the
plugin's dependencies), which the unit tier's "seconds, nothing outside the process" rules out.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ws import __version__ as CORE_VERSION

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parent.parent
WHEELS = (REPO / "core", REPO / "plugins" / "incus")


def run(argv: list[str], timeout: float = 300, **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, uv: list[str]) -> Path:
    """A venv made by the stdlib's venv module (pip included, as a user has it) with ``pip install
    --find-links <our wheels> ws-plugin-incus``: nothing else named, the index consulted for the rest."""
    root = tmp_path_factory.mktemp("packaging")
    wheels = root / "wheels"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT", "PIP_NO_INDEX"))}
    for source in WHEELS:
        run([*uv, "build", "--wheel", "--quiet", "--out-dir", str(wheels), str(source)], env=environ)
    base_python = getattr(sys, "_base_executable", sys.executable)
    run([base_python, "-m", "venv", str(root / "venv")], env=environ)
    pip = [str(root / "venv" / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "install", "--quiet", "--find-links", str(wheels), "ws-plugin-incus"], env=environ)
    return root / "venv"


def _pip(venv: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args]
    if check:
        return run(argv)
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_the_index_is_reachable_and_has_a_foreign_ws(installed: Path) -> None:
    """Without this, a green result could only mean that pip never saw the index."""
    listing = _pip(installed, "index", "versions", "ws").stdout
    assert listing.startswith("ws ("), listing
    assert CORE_VERSION not in listing.splitlines()[0], "the index's 'ws' is not ours; the test relies on that"


def test_the_core_is_ours_and_the_crawler_is_absent(installed: Path) -> None:
    shown = _pip(installed, "show", "--files", "ws-core").stdout
    fields = dict(line.split(": ", 1) for line in shown.splitlines() if ": " in line)
    assert (fields["Name"], fields["Version"]) == ("ws-core", CORE_VERSION)
    assert "ws-plugin-incus" in fields["Required-by"]
    installed_main = Path(fields["Location"]) / "ws" / "cli" / "main.py"
    ours = REPO / "core" / "src" / "ws" / "cli" / "main.py"
    assert hashlib.sha256(installed_main.read_bytes()).digest() == hashlib.sha256(ours.read_bytes()).digest()
    missing = _pip(installed, "show", "ws", check=False)
    assert missing.returncode != 0 and "not found: ws" in missing.stderr, f"PyPI's 'ws' got installed:\n{missing}"


def test_the_installed_ws_lists_the_incus_backend(installed: Path, tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WS_")}
    environ["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    ws = str(installed / "bin" / "ws")
    assert run([ws, "--version"], env=environ).stdout == f"ws, version {CORE_VERSION}\n"
    listing = json.loads(run([ws, "plugins", "--json"], env=environ).stdout)
    assert listing["failed"] == []
    by_name = {plugin["name"]: plugin for plugin in listing["plugins"]}
    assert (by_name["ws.builtin"]["distribution"], by_name["ws.builtin"]["version"]) == ("ws-core", CORE_VERSION)
    assert (by_name["incus"]["distribution"], by_name["incus"]["types"]) == ("ws-plugin-incus", ["incus"])
