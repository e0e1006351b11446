"""``ws doctor``'s project check: a missing project fails with the command that makes it, a project that
shares the default project's images is a warning (ws's image clean-up cannot see other projects)."""

from __future__ import annotations

import pytest
from ws.types import CheckStatus
from ws_plugin_incus.doctor import _project_check
from ws_plugin_incus.errors import IncusError


class _Server:
    """Answers ``GET projects/NAME`` with ``answer`` (or raises it)."""

    def __init__(self, answer):
        self.answer = answer
        self.asked: list[str] = []

    def get(self, path: str, _doing: str):
        self.asked.append(path)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    ("answer", "status", "says"),
    [
        ({"config": {"features.images": "true"}}, CheckStatus.OK, "project ws with its own images"),
        ({"config": {"features.images": "false"}}, CheckStatus.WARN, "shares the default project's images"),
        (IncusError("reading the project: the Incus project 'ws' ... does not exist"), CheckStatus.FAIL, "not exist"),
    ],
)
def test_project_check(answer, status: CheckStatus, says: str) -> None:
    server = _Server(answer)
    check = _project_check(server, "ws", CheckStatus.FAIL)
    assert (check.name, check.status) == ("incus: project", status)
    assert says in check.detail
    assert server.asked == ["projects/ws"]
    if status is not CheckStatus.OK:
        assert "incus project" in check.fix
