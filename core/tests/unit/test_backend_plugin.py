"""``ws.backend_plugin.BackendPlugin``: each backend hook, called through core's typed dispatch, reaches the
function of the package's module named in its docstring with core's arguments in that order, and a module
is imported only when a hook needs it (the plugin object is imported on every ``ws`` run)."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from ws import hookimpl
from ws.backend_plugin import BackendPlugin
from ws.plugins import PluginManager
from ws.plugins.dispatch import Backend
from ws.types import WorkspaceType

MODULES = {
    "backend": """
        def create(ctx, workspace, request): CALLS.append(("create", ctx, workspace, request)); return "handle"
        def start(ctx, workspace, handle): CALLS.append(("start", ctx, workspace, handle))
        def stop(ctx, workspace): CALLS.append(("stop", ctx, workspace))
        def destroy(ctx, workspace): CALLS.append(("destroy", ctx, workspace))
        def status(ctx, workspace): CALLS.append(("status", ctx, workspace)); return "status"
        def netns(ctx, workspace): CALLS.append(("netns", ctx, workspace)); return "netns"
    """,
    "access": """
        def exec_command(ctx, workspace, command, interactive):
            CALLS.append(("exec", ctx, workspace, command, interactive)); return 7
        def logs(ctx, workspace, follow): CALLS.append(("logs", ctx, workspace, follow)); return 0
    """,
    "doctor": """
        def checks(ctx): CALLS.append(("checks", ctx)); return ["check"]
    """,
}


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"wstp_backend_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("CALLS = []\n")
    for module, body in MODULES.items():
        (folder / f"{module}.py").write_text(f"from {name} import CALLS\n" + textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_every_backend_hook_is_forwarded_to_the_packages_modules_in_core_argument_order(package: str) -> None:
    class Plugin(BackendPlugin):
        @hookimpl
        def ws_workspace_types(self) -> list[WorkspaceType]:
            return [WorkspaceType("fwd")]

    Plugin.package = package
    plugin = Plugin()
    registry = PluginManager(environ={"WS_PLUGINS": ""}).load([("fwd", plugin)]).registry
    assert not any(module.startswith(f"{package}.") for module in sys.modules), "imported before a hook needs it"

    class Workspace:
        type = "fwd"

    workspace, ctx = Workspace(), object()
    backend = Backend(registry, workspace, ctx)
    assert backend.create("request") == "handle"
    backend.start("handle")
    backend.stop()
    backend.destroy(purge=True)
    assert backend.status() == "status" and backend.netns() == "netns"
    assert backend.exec(["true"], interactive=False) == 7 and backend.logs(follow=True) == 0
    assert plugin.ws_doctor_checks(ctx) == ["check"]  # a contribution hook: core's built-ins would see this ctx
    assert [
        ("create", ctx, workspace, "request"),
        ("start", ctx, workspace, "handle"),
        ("stop", ctx, workspace),
        ("destroy", ctx, workspace),
        ("status", ctx, workspace),
        ("netns", ctx, workspace),
        ("exec", ctx, workspace, ["true"], False),
        ("logs", ctx, workspace, True),
        ("checks", ctx),
    ] == sys.modules[package].CALLS
