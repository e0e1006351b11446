"""Fixtures of ws-plugin-pia's tests: the fake PIA service (ws_testing.fake_pia) on loopback addresses of a
random 127.x.y.0/24 (unit tier; host names reach it through the ``hosts`` override), its CA and list key
as files, a password file, and settings pointing at it."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ws_plugin_pia.settings import PiaSettings
from ws_plugin_pia.store import PiaPaths
from ws_testing.fake_pia import PASSWORD, USERNAME, FakePia, TestCA, example_spec


@pytest.fixture
def loopback_prefix() -> str:
    return f"127.{random.randint(64, 250)}.{random.randint(1, 250)}"


@pytest.fixture(scope="session")
def pki() -> tuple[TestCA, Any]:
    """The test CA and the server list's RSA key, made once per session."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    return TestCA(), rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def make_fake(loopback_prefix: str, pki: tuple[TestCA, Any]) -> Iterator[Callable[..., FakePia]]:
    started: list[FakePia] = []

    def make(**overrides: Any) -> FakePia:
        ca, list_key = pki
        fake = FakePia(example_spec(loopback_prefix, **overrides), ca=ca, list_key=list_key).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def fake_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Spec overrides for ``fake``: parametrize indirectly with the name of a fixture returning them."""
    name = getattr(request, "param", None)
    return request.getfixturevalue(name) if name else {}


@pytest.fixture
def fake(make_fake: Callable[..., FakePia], fake_overrides: dict[str, Any]) -> FakePia:
    return make_fake(**fake_overrides)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "pia-password"
    path.write_text(PASSWORD + "\n")
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def make_settings(fake: FakePia, tmp_path: Path, password_file: Path) -> Callable[..., PiaSettings]:
    """Settings for ``fake``: CA and list key written to files, host names mapped to its address."""
    (tmp_path / "ca.crt").write_bytes(fake.ca.pem)
    (tmp_path / "serverlist.pub").write_bytes(fake.list_public_key_pem)

    def make(**overrides: Any) -> PiaSettings:
        data: dict[str, Any] = {
            "username": USERNAME,
            "password_file": str(password_file),
            "ca_file": str(tmp_path / "ca.crt"),
            "serverlist_pubkey_file": str(tmp_path / "serverlist.pub"),
            "serverlist_url": fake.serverlist_url(),
            "token_url": fake.token_url(),
            "hosts": {
                fake.spec.serverlist_host: fake.spec.serverlist_address,
                fake.spec.token_host: fake.spec.token_address,
            },
            "region": "swiss",
            "request_timeout": 2.0,
            "connect_timeout": 2.0,
            "latency_timeout": 0.5,
        }
        data.update(overrides)
        return PiaSettings.model_validate({k: v for k, v in data.items() if v is not None})

    return make


@pytest.fixture
def settings(make_settings: Callable[..., PiaSettings]) -> PiaSettings:
    return make_settings()


@pytest.fixture
def paths(tmp_path: Path) -> PiaPaths:
    return PiaPaths.under(tmp_path / "state")


@pytest.fixture
def other_ca(tmp_path: Path) -> Path:
    """A CA the fake's certificates do not chain to."""
    path = tmp_path / "other-ca.crt"
    path.write_bytes(TestCA("some other CA").pem)
    return path


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, Any] | None], Path]:
    """``write_config(pia_table)``: a ws.toml with ``state_dir`` under tmp_path and that ``[pia]`` table."""

    def write(pia: dict[str, Any] | None) -> Path:
        lines = [f'state_dir = "{tmp_path / "state"}"', "[pia]"]
        lines += [f"{key} = {_toml(value)}" for key, value in (pia or {}).items()]
        path = tmp_path / "ws.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    return write


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    return str(value) if isinstance(value, (int, float)) else json.dumps(str(value))
