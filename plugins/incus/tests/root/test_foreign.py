"""An instance ws did not create is never stopped or deleted, and the user is told why ws stops."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def foreign(wsenv):
    """A running instance named like the workspace's, made with the incus client (no ws marker)."""
    name = wsenv.name("alien")
    instance = f"workspace-{name}"
    wsenv.ws("up", name)  # imports ws's image; then replace ws's instance by a foreign one
    wsenv.ws("down", name)
    wsenv.incus("init", wsenv.ws_image_alias(), instance)
    try:
        yield name, instance
    finally:
        wsenv.incus("delete", "--force", instance, check=False)


def test_up_down_destroy_refuse_a_foreign_instance(wsenv, foreign):
    name, instance = foreign
    for command in (("up", name), ("down", name), ("destroy", name)):
        result = wsenv.ws(*command, check=False)
        assert result.returncode == 1, command
        assert "ws did not create it" in result.stderr and "never deletes" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert wsenv.incus_json("list", instance)[0]["name"] == instance
    status = wsenv.status(name)
    assert status["state"] == "error" and "not created by ws" in status["detail"]
