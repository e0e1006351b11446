"""The plugin manager: explicit built-ins, entry points loaded in isolation (a broken plugin is reported and
skipped), WS_PLUGINS / WS_DISABLE_PLUGINS / WS_STRICT_PLUGINS, the type registry and dispatch to exactly
one backend.

Entry-point plugins here are real: a ``*.dist-info`` folder with an ``entry_points.txt`` and a module
beside it, put on ``sys.path`` so importlib.metadata discovers them like any installed distribution.
"""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from ws import hookimpl, hookspecs
from ws.cli.common import CliState
from ws.cli.main import cli
from ws.errors import PluginLoadError, PluginMissingError, WsError
from ws.plugins import PluginManager
from ws.types import ProvisionFile, State, WorkspaceStatus, WorkspaceType

GOOD = """
from ws import hookimpl
from ws.types import WorkspaceType

@hookimpl
def ws_workspace_types():
    return [WorkspaceType("good")]
"""

BROKEN = {
    "import error": ("import wstp_this_module_does_not_exist\n", "No module named 'wstp_this_module_does_not_exist'"),
    "unknown hook": (
        "from ws import hookimpl\n@hookimpl\ndef ws_teleport(ctx):\n    pass\n",
        "implements unknown hook 'ws_teleport'",
    ),
    "wrong argument names": (
        "from ws import hookimpl\n@hookimpl\ndef ws_status(workspace, context):\n    pass\n",
        "PluginValidationError",
    ),
    "unmarked hook": ("def ws_status(workspace, ctx):\n    pass\n", "ws_status is not marked with @ws.hookimpl"),
    "registration hook raises": (
        "from ws import hookimpl\n@hookimpl\ndef ws_workspace_types():\n    raise RuntimeError('no licence')\n",
        "RuntimeError: no licence",
    ),
    "not a WorkspaceType": (
        "from ws import hookimpl\n@hookimpl\ndef ws_workspace_types():\n    return ['bad']\n",
        "not a ws.types.WorkspaceType",
    ),
    "section without a model": (
        "from ws import hookimpl\n@hookimpl\ndef ws_config_sections():\n    return {'bad': dict}\n",
        "for [bad], not a pydantic model",
    ),
}

Install = Callable[..., None]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Install:
    """``install({entry_name: (distribution, module source)})``: real distributions on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    modules: list[str] = []
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a fresh entry-point cache
    for name in ("WS_PLUGINS", "WS_DISABLE_PLUGINS", "WS_STRICT_PLUGINS"):
        monkeypatch.delenv(name, raising=False)

    def run(plugins: dict[str, tuple[str, str]]) -> None:
        for entry, (distribution, source) in plugins.items():
            module = f"wstp_{entry}_{uuid.uuid4().hex[:8]}"
            modules.append(module)
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            info = site / f"{distribution.replace('-', '_')}-1.2.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.2\n")
            (info / "entry_points.txt").write_text(f"[ws]\n{entry} = {module}\n")
        monkeypatch.syspath_prepend(str(site))

    yield run
    for module in modules:
        sys.modules.pop(module, None)


def names(infos) -> set[str]:
    return {info.name for info in infos}


def entry_point_plugins(manager: PluginManager) -> set[str]:
    return names(manager.registry.loaded) - {"ws.builtin", "ws.sandbox.plugin"}


# --- loading ----------------------------------------------------------------------------------------------


def test_builtin_plugins_are_registered_explicitly_and_cannot_be_filtered_out() -> None:
    manager = PluginManager(environ={"WS_PLUGINS": "", "WS_DISABLE_PLUGINS": "ws.builtin,ws.sandbox.plugin"}).load()
    [builtin, sandbox] = manager.registry.loaded
    assert (builtin.name, builtin.distribution, builtin.hooks) == ("ws.builtin", "ws-core", ["ws_doctor_checks"])
    assert (sandbox.name, sandbox.distribution, sandbox.networks) == ("ws.sandbox.plugin", "ws-core", ["sandbox"])
    assert sandbox.hooks == [
        "ws_network_attach",
        "ws_network_define",
        "ws_network_describe",
        "ws_network_down",
        "ws_network_status",
        "ws_network_up",
        "ws_networks",
    ], "core's sandbox is a network plugin like any other"
    assert manager.registry.failed == []


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_plugin_is_reported_and_the_others_keep_working(
    kind: str, install: Install, capsys: pytest.CaptureFixture[str]
) -> None:
    source, error = BROKEN[kind]
    install({"good": ("ws-plugin-good", GOOD), "bad": ("ws-plugin-bad", source)})
    manager = PluginManager().load()

    [failed] = [info for info in manager.registry.failed if info.name == "bad"]
    assert (failed.distribution, failed.version) == ("ws-plugin-bad", "1.2")
    assert error in failed.error
    assert {"ws.builtin", "good"} <= names(manager.registry.loaded) and "bad" not in names(manager.registry.loaded)
    assert manager.registry.workspace_type("good").name == "good"
    warning = capsys.readouterr().err
    assert "warning: plugin 'bad' from distribution 'ws-plugin-bad' failed to load" in warning
    assert error in warning and "ws continues without it" in warning
    assert manager.pm.get_plugin("bad") is None, "a failed plugin must not stay registered"


def test_strict_mode_turns_a_load_failure_into_an_error(install: Install) -> None:
    install({"bad": ("ws-plugin-bad", BROKEN["import error"][0])})
    with pytest.raises(PluginLoadError, match="plugin 'bad' from distribution 'ws-plugin-bad'") as raised:
        PluginManager(environ={"WS_STRICT_PLUGINS": "1"}).load()
    assert raised.value.exit_code == 3
    assert "WS_STRICT_PLUGINS" in str(raised.value)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WS_PLUGINS": "good"}, {"good"}),
        ({"WS_PLUGINS": "ws-plugin-good"}, {"good"}),
        ({"WS_PLUGINS": "good, other"}, {"good", "other"}),
        ({"WS_PLUGINS": ""}, set()),
        ({"WS_PLUGINS": "good,other", "WS_DISABLE_PLUGINS": "other"}, {"good"}),
        ({"WS_DISABLE_PLUGINS": "bad,ws-plugin-other"}, {"good"}),
    ],
)
def test_entry_points_are_filtered_by_name_or_distribution(
    environ: dict[str, str], expected: set[str], install: Install
) -> None:
    other = GOOD.replace('"good"', '"other"')
    install({"good": ("ws-plugin-good", GOOD), "other": ("ws-plugin-other", other), "bad": ("ws-plugin-bad", "1/0")})
    manager = PluginManager(environ=environ).load()
    assert entry_point_plugins(manager) & {"good", "other", "bad"} == expected
    assert "bad" not in names(manager.registry.failed), "a filtered-out plugin must not even be imported"


def test_disabled_plugin_is_not_imported_even_when_broken(install: Install) -> None:
    install({"bad": ("ws-plugin-bad", BROKEN["import error"][0])})
    manager = PluginManager(environ={"WS_DISABLE_PLUGINS": "bad", "WS_STRICT_PLUGINS": "1"}).load()
    assert manager.registry.failed == []


# --- registry -------------------------------------------------------------------------------------------------


class Backend:
    """A backend plugin for one type that records which of its hooks ran."""

    def __init__(self, type_name: str, aliases: tuple[str, ...] = (), network: str | None = None):
        self.type = WorkspaceType(type_name, aliases=aliases)
        self.network = network
        self.calls: list[str] = []

    @hookimpl
    def ws_workspace_types(self) -> list[WorkspaceType]:
        return [self.type]

    @hookimpl
    def ws_networks(self) -> list[str]:
        return [self.network] if self.network else []

    @hookimpl
    def ws_status(self, workspace, ctx) -> WorkspaceStatus:
        self.calls.append(f"status {workspace}")
        return WorkspaceStatus(State.RUNNING, detail=self.type.name)

    @hookimpl
    def ws_stop(self, workspace, ctx) -> None:
        self.calls.append(f"stop {workspace}")

    @hookimpl
    def ws_provision_files(self, workspace, attachment, ctx) -> list[ProvisionFile]:
        return [ProvisionFile(f"/etc/{self.type.name}", b"")]


def test_each_backend_hook_is_dispatched_to_the_type_owner_alone() -> None:
    alpha, beta = Backend("alpha"), Backend("beta")
    manager = PluginManager(environ={"WS_PLUGINS": ""}).load([("alpha", alpha), ("beta", beta)])

    assert manager.registry.call_backend(hookspecs.ws_status, "alpha", workspace="w1", ctx=None).detail == "alpha"
    assert manager.registry.call_backend(hookspecs.ws_stop, "beta", workspace="w2", ctx=None) is None
    assert manager.registry.call_backend(hookspecs.ws_status, "beta", workspace="w3", ctx=None).detail == "beta"
    assert alpha.calls == ["status w1"]
    assert beta.calls == ["stop w2", "status w3"]


def test_contribution_hooks_reach_every_plugin_in_registration_order() -> None:
    manager = PluginManager(environ={"WS_PLUGINS": ""}).load([("alpha", Backend("alpha")), ("beta", Backend("beta"))])
    results = manager.registry.call_all(hookspecs.ws_provision_files, workspace="w", attachment=None, ctx=None)
    assert [files[0].path for files in results] == ["/etc/alpha", "/etc/beta"]


def test_a_hook_the_owner_does_not_implement_is_an_error_not_another_plugins_call() -> None:
    class Logs(Backend):
        @hookimpl
        def ws_logs(self, workspace, ctx, follow) -> int:
            raise AssertionError("beta's ws_logs must never run for an alpha workspace")

    manager = PluginManager(environ={"WS_PLUGINS": ""}).load([("alpha", Backend("alpha")), ("beta", Logs("beta"))])
    with pytest.raises(WsError, match="backend 'alpha' does not implement logs"):
        manager.registry.call_backend(hookspecs.ws_logs, "alpha", workspace="w", ctx=None, follow=False)


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (Backend("alpha"), "type 'alpha' is already provided by plugin 'first'"),
        (Backend("gamma", aliases=("alpha",)), "type 'alpha' is already provided by plugin 'first'"),
        (Backend("gamma", network="sandbox"), "network 'sandbox' is already provided by plugin 'ws.sandbox.plugin'"),
    ],
)
def test_a_second_claim_fails_that_plugin_and_the_first_owner_keeps_working(
    second: Backend, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = Backend("alpha")
    manager = PluginManager(environ={"WS_PLUGINS": ""}).load([("first", first), ("second", second)])

    [failed] = manager.registry.failed
    assert failed.name == "second" and message in failed.error
    assert "plugin 'second' from distribution '(in-process)' failed to load" in capsys.readouterr().err
    assert "gamma" not in manager.registry.types, "a refused plugin must not leave half of its claims behind"
    assert manager.registry.call_backend(hookspecs.ws_status, "alpha", workspace="w", ctx=None).detail == "alpha"
    assert second.calls == [] and first.calls == ["status w"]
    assert manager.registry.call_all(hookspecs.ws_provision_files, workspace="w", attachment=None, ctx=None) == [
        [ProvisionFile("/etc/alpha", b"")]
    ]


def test_aliases_dispatch_to_the_owner() -> None:
    microvm = Backend("microvm", ("vm",))
    manager = PluginManager(environ={"WS_PLUGINS": ""}).load([("microvm", microvm), ("x", Backend("x", ("xx",)))])
    assert manager.registry.workspace_type("vm").name == "microvm"  # the original system's name, as an alias
    assert manager.registry.call_backend(hookspecs.ws_status, "vm", workspace="w", ctx=None).detail == "microvm"
    assert manager.registry.call_backend(hookspecs.ws_status, "xx", workspace="w", ctx=None).detail == "x"


@pytest.mark.parametrize(
    ("name", "hint"),
    [("incus", "ws-plugin-incus"), ("vm", "ws-plugin-microvm"), ("container", "ws-plugin-nspawn")],
)
def test_a_missing_first_party_type_names_the_distribution_to_install(name: str, hint: str) -> None:
    manager = PluginManager(environ={"WS_PLUGINS": ""}).load()
    with pytest.raises(PluginMissingError, match=f"install {hint}") as raised:
        manager.registry.workspace_type(name)
    assert raised.value.exit_code == 3
    with pytest.raises(PluginMissingError, match=hint):
        manager.registry.call_backend(hookspecs.ws_status, name, workspace="w", ctx=None)


def test_a_missing_unknown_type_lists_the_installed_ones() -> None:
    manager = PluginManager(environ={"WS_PLUGINS": ""}).load([("alpha", Backend("alpha"))])
    with pytest.raises(PluginMissingError, match=r"workspace type 'zeta' \(installed: alpha\)"):
        manager.registry.workspace_type("zeta")


def test_a_type_whose_distribution_failed_to_load_says_so(install: Install) -> None:
    install({"incus": ("ws-plugin-incus", BROKEN["import error"][0])})
    manager = PluginManager(environ={"WS_PLUGINS": "incus"}).load()
    with pytest.raises(PluginMissingError, match="comes from ws-plugin-incus, which is installed but failed to load"):
        manager.registry.workspace_type("incus")


# --- ws plugins and the command line ---------------------------------------------------------------------------


def invoke(*args: str, plugins: list[tuple[str, object]], env: dict[str, str] | None = None):
    environ = {"WS_PLUGINS": "", **(env or {})}
    return CliRunner(env=environ).invoke(cli, list(args), obj=CliState(extra_plugins=plugins))


def test_ws_plugins_lists_loaded_and_failed_plugins() -> None:
    unknown_hook = type("Typo", (), {"ws_stauts": hookimpl(lambda self, workspace, ctx: None)})()
    plugins = [("alpha", Backend("alpha", network="lab")), ("typo", unknown_hook)]

    result = invoke("plugins", "--json", plugins=plugins)
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    alpha = next(info for info in listing["plugins"] if info["name"] == "alpha")
    assert alpha == {
        "name": "alpha",
        "distribution": "(in-process)",
        "version": "0",
        "types": ["alpha"],
        "networks": ["lab"],
        "sections": [],
        "hooks": ["ws_networks", "ws_provision_files", "ws_status", "ws_stop", "ws_workspace_types"],
        "error": None,
    }
    [typo] = listing["failed"]
    assert typo["name"] == "typo" and "unknown hook 'ws_stauts'" in typo["error"]
    assert "plugin 'typo' from distribution '(in-process)' failed to load" in result.stderr

    text = invoke("plugins", plugins=plugins).stdout
    assert "alpha ((in-process) 0): type alpha, network lab" in text
    assert "typo ((in-process) 0): FAILED: PluginLoadError: implements unknown hook 'ws_stauts'" in text


def test_strict_mode_fails_every_command_with_exit_status_3_even_help() -> None:
    unknown_hook = type("Typo", (), {"ws_stauts": hookimpl(lambda self, workspace, ctx: None)})()
    for args in (["plugins"], ["--help"], ["list"]):
        result = invoke(*args, plugins=[("typo", unknown_hook)], env={"WS_STRICT_PLUGINS": "1"})
        assert result.exit_code == 3, (args, result.output)
        assert "plugin 'typo' from distribution '(in-process)' failed to load" in result.stderr
        assert "Traceback" not in result.output


def test_plugin_commands_follow_the_plugins_of_each_run() -> None:
    import click

    class Commands:
        @hookimpl
        def ws_register_commands(self, cli: click.Group) -> None:
            cli.add_command(click.Command("hello-plugin", callback=lambda: click.echo("hello")))

    assert invoke("--help", plugins=[]).exit_code == 0  # an earlier run without the plugin
    result = invoke("hello-plugin", plugins=[("commands", Commands())])
    assert (result.exit_code, result.stdout) == (0, "hello\n")


def test_a_plugin_whose_commands_fail_costs_only_its_commands() -> None:
    import click

    class Broken:
        @hookimpl
        def ws_register_commands(self, cli: click.Group) -> None:
            raise RuntimeError("boom")

    class Commands:
        @hookimpl
        def ws_register_commands(self, cli: click.Group) -> None:
            cli.add_command(click.Command("hello-plugin", callback=lambda: click.echo("hello")))

    plugins = [("broken", Broken()), ("commands", Commands())]
    result = invoke("--help", plugins=plugins)
    assert result.exit_code == 0 and "hello-plugin" in result.stdout
    assert "plugin 'broken' from distribution '(in-process)' failed to add its commands: RuntimeError: boom" in (
        result.stderr
    )
    assert invoke("hello-plugin", plugins=plugins).stdout == "hello\n"
    assert invoke("--help", plugins=plugins, env={"WS_STRICT_PLUGINS": "1"}).exit_code == 3


class Sections:
    """A plugin naming its section models by import reference, as first-party plugins do."""

    def __init__(self, reference: str):
        self.reference = reference

    @hookimpl
    def ws_config_sections(self) -> dict[str, str]:
        return {"thing": self.reference}


def test_a_section_model_reference_is_imported_only_when_the_configuration_needs_it() -> None:
    module = f"ws_test_section_{uuid.uuid4().hex}"
    manager = PluginManager(environ={"WS_PLUGINS": ""}).load([("sections", Sections(f"{module}:Model"))])
    assert manager.registry.loaded[-1].sections == ["thing"] and module not in sys.modules
    sys.modules[module] = type(sys)(module)
    sys.modules[module].Model = type("Model", (), {"model_validate": classmethod(lambda cls, data: data)})
    try:
        assert manager.registry.section_model("thing") is sys.modules[module].Model
    finally:
        del sys.modules[module]


@pytest.mark.parametrize("reference", ["no_such_module_for_ws:Model", "json:dumps", "not-a-reference"])
def test_a_broken_section_model_reference_is_that_plugins_error(reference: str) -> None:
    manager = PluginManager(environ={"WS_PLUGINS": ""}).load([("sections", Sections(reference))])
    if ":" not in reference:
        assert [info.name for info in manager.registry.failed] == ["sections"]
        return
    with pytest.raises(PluginLoadError, match="plugin 'sections'"):
        _ = manager.registry.section_model("thing")
