"""Loading plugins and dispatching hooks to the one plugin that owns a workspace type or network.

Design (after tox 4's plugin manager): core registers its built-in plugins explicitly, then every entry
point in the ``ws`` group. Each plugin is loaded in isolation: an import error, a hook that does not match
its spec, or a type already claimed by another plugin unregisters *that* plugin, records the failure for
``ws plugins`` and logs a warning; the rest keep working. ``WS_STRICT_PLUGINS=1`` turns failures into
errors.

Dispatch is structural: registration hooks build a registry ``type -> plugin`` and ``network -> plugin``
where a second claim is refused, and backend hooks are then called through a pluggy *subset* hook caller
that contains only the owning plugin. Two backends can therefore never both act on one workspace, and a
backend never has to check ``workspace.type`` itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ws.types import WorkspaceType

from ws import hookspecs
from ws.errors import PluginLoadError, PluginMissingError, WsError

ENTRY_POINT_GROUP = "ws"
BUILTIN_PLUGINS = ("ws.builtin",)
"""Core's own plugins, registered explicitly (not through entry points) so they cannot go missing."""

KNOWN_DISTRIBUTIONS = {
    "incus": "ws-plugin-incus",
    "nspawn": "ws-plugin-nspawn",
    "container": "ws-plugin-nspawn",
    "microvm": "ws-plugin-microvm",
    "vm": "ws-plugin-microvm",
    "vpn": "ws-plugin-pia",
    "pia": "ws-plugin-pia",
}
"""Which distribution provides a first-party type, network or config section, for "install X" hints."""

TYPE_ALIASES = {"vm": "microvm", "container": "nspawn"}
"""The original system's type names, accepted for ws's backend names."""


@dataclass
class PluginInfo:
    """One row of ``ws plugins``."""

    name: str
    distribution: str
    version: str
    types: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class _Candidate:
    name: str
    distribution: str
    version: str
    load: Any  # () -> module or object


class PluginManager:
    """ws's plugin manager: loading with isolation, the type/network registry, and dispatch."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ
        self.pm = pluggy.PluginManager("ws")
        self.pm.add_hookspecs(hookspecs)
        self._registered: list[tuple[PluginInfo, object]] = []
        self._claims_made = False
        self._loaded: list[PluginInfo] = []
        self._failed: list[PluginInfo] = []
        self._types: dict[str, WorkspaceType] = {}
        self._type_owner: dict[str, str] = {}
        self._network_owner: dict[str, str] = {}
        self._section_owner: dict[str, str] = {}
        self._section_models: dict[str, Any] = {}

    # --- loading ----------------------------------------------------------------------------------------

    def load(self, extra: Iterable[tuple[str, object]] = ()) -> PluginManager:
        """Register built-ins, then entry points (filtered by WS_PLUGINS / WS_DISABLE_PLUGINS), then
        ``extra`` ``(name, plugin)`` pairs (used by tests to add an in-process plugin)."""
        from ws import __version__

        for module_name in BUILTIN_PLUGINS:
            self._add(_Candidate(module_name, "ws-core", __version__, lambda m=module_name: _import(m)))
        for candidate in self._entry_point_candidates():
            self._add(candidate)
        for name, plugin in extra:
            self._add(_Candidate(name, "(in-process)", "0", lambda p=plugin: p))
        return self

    def _entry_point_candidates(self) -> list[_Candidate]:
        from ws.entrypoints import entry_points

        only = _name_set(self.environ.get("WS_PLUGINS"))
        skip = _name_set(self.environ.get("WS_DISABLE_PLUGINS")) or set()
        candidates = []
        for record in entry_points(ENTRY_POINT_GROUP):
            names = {record.name, record.distribution}
            if (only is not None and not names & only) or names & skip:
                continue
            candidates.append(_Candidate(record.name, record.distribution, record.version, record.load))
        return candidates

    def _add(self, candidate: _Candidate) -> None:
        info = PluginInfo(candidate.name, candidate.distribution, candidate.version)
        try:
            plugin = candidate.load()
            if self.pm.is_registered(plugin):
                raise PluginLoadError("the same plugin object is already registered under another name")
            self.pm.register(plugin, name=candidate.name)
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin must not break ws
            self._fail(info, exc)
            return
        try:
            self._check_unknown_hooks(plugin)
        except Exception as exc:  # noqa: BLE001
            self.pm.unregister(plugin)
            self._fail(info, exc)
            return
        info.hooks = sorted(
            caller.name for caller in self.pm.get_hookcallers(plugin) or () if caller.name.startswith("ws_")
        )
        self._registered.append((info, plugin))

    def _ensure_claims(self) -> None:
        """Run the registration hooks of every registered plugin, in load order, once.

        Deferred until something needs the registry (dispatch, configuration, ``ws plugins``), so ``ws --help``
        only imports plugin modules and never the types and models they register.
        """
        if self._claims_made:
            return
        self._claims_made = True
        for info, plugin in self._registered:
            try:
                self._claim(info.name, info)
            except Exception as exc:  # noqa: BLE001 - any failure of a plugin must not break ws
                self.pm.unregister(plugin)
                self._fail(info, exc)
            else:
                self._loaded.append(info)

    @property
    def loaded(self) -> list[PluginInfo]:
        self._ensure_claims()
        return self._loaded

    @property
    def failed(self) -> list[PluginInfo]:
        self._ensure_claims()
        return self._failed

    @property
    def types(self) -> dict[str, WorkspaceType]:
        """Registered workspace types by name and alias."""
        self._ensure_claims()
        return self._types

    def _check_unknown_hooks(self, plugin: object) -> None:
        """A ``ws_*`` function without a spec is a typo or written for another ws version; one without
        the ``@ws.hookimpl`` marker would silently never be called."""
        for attr in dir(plugin):
            if not attr.startswith("ws_") or not callable(getattr(plugin, attr, None)):
                continue
            if self.pm.parse_hookimpl_opts(plugin, attr) is None:
                raise PluginLoadError(f"{attr} is not marked with @ws.hookimpl")
            if getattr(self.pm.hook, attr).spec is None:
                raise PluginLoadError(f"implements unknown hook {attr!r} (not in this version of ws)")

    def _claim(self, name: str, info: PluginInfo) -> None:
        """Ask the new plugin what it provides; refuse names another plugin already owns."""
        from ws.types import WorkspaceType

        types = _one_plugin_result(self.pm, name, "ws_workspace_types") or []
        networks = _one_plugin_result(self.pm, name, "ws_networks") or []
        sections = _one_plugin_result(self.pm, name, "ws_config_sections") or {}
        for wtype in types:
            if not isinstance(wtype, WorkspaceType):
                raise PluginLoadError(f"ws_workspace_types returned {wtype!r}, not a ws.types.WorkspaceType")
        for section, model in sections.items():
            if isinstance(model, str):
                if ":" not in model:
                    raise PluginLoadError(f"ws_config_sections: {model!r} for [{section}] is not 'module:Class'")
            elif not callable(getattr(model, "model_validate", None)):  # duck-typed: pydantic is not imported here
                raise PluginLoadError(f"ws_config_sections returned {model!r} for [{section}], not a pydantic model")
        claims = [("type", t, self._type_owner) for wt in types for t in (wt.name, *wt.aliases)]
        claims += [("network", n, self._network_owner) for n in networks]
        claims += [("config section", s, self._section_owner) for s in sections]
        for kind, claimed, owners in claims:
            if claimed in owners:
                raise PluginLoadError(f"{kind} {claimed!r} is already provided by plugin {owners[claimed]!r}")
        for _kind, claimed, owners in claims:
            owners[claimed] = name
        for wtype in types:
            self._types[wtype.name] = wtype
            for alias in wtype.aliases:
                self._types[alias] = wtype
        self._section_models.update(sections)
        info.types = sorted(wt.name for wt in types)
        info.networks = sorted(networks)
        info.sections = sorted(sections)

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        info.error = f"{type(exc).__name__}: {exc}"
        self._failed.append(info)
        self._warn(info, "failed to load", exc)

    def _warn(self, info: PluginInfo, what: str, exc: BaseException) -> None:
        message = f"plugin {info.name!r} from distribution {info.distribution!r} {what}: {type(exc).__name__}: {exc}"
        if _truthy(self.environ.get("WS_STRICT_PLUGINS")):
            raise PluginLoadError(message + " (WS_STRICT_PLUGINS is set)") from exc
        print(f"warning: {message}; ws continues without it", file=sys.stderr)

    def register_commands(self, cli: Any) -> None:
        """``ws_register_commands`` of each plugin on its own: one that raises costs only its commands, not
        ``ws --help`` and every other plugin's commands."""
        for info, plugin in self._registered:
            if not self.pm.is_registered(plugin):
                continue  # failed its registration hooks
            try:
                _one_plugin_result(self.pm, info.name, "ws_register_commands", cli=cli)
            except Exception as exc:  # noqa: BLE001 - any failure of a plugin must not break ws
                self._warn(info, "failed to add its commands", exc)

    # --- registry ---------------------------------------------------------------------------------------

    def workspace_type(self, name: str) -> WorkspaceType:
        """The registered type for ``name`` (aliases included), or a PluginMissingError saying what to
        install."""
        wtype = self.types.get(name) or self.types.get(TYPE_ALIASES.get(name, ""))
        if wtype is None:
            raise PluginMissingError(self.missing_message("workspace type", name))
        return wtype

    def missing_message(self, kind: str, name: str) -> str:
        hint = KNOWN_DISTRIBUTIONS.get(name)
        failed = [f for f in self.failed if f.distribution == hint]
        if failed:
            return f"{kind} {name!r} comes from {hint}, which is installed but failed to load: {failed[0].error}"
        if hint:
            return f"no installed plugin provides {kind} {name!r}; install {hint} (pip install {hint})"
        known = ", ".join(sorted(self._known(kind))) or "none"
        return f"no installed plugin provides {kind} {name!r} (installed: {known})"

    def _known(self, kind: str) -> Iterable[str]:
        self._ensure_claims()
        return {"workspace type": self.types, "network": self._network_owner}.get(kind, self._section_owner)

    @property
    def networks(self) -> list[str]:
        self._ensure_claims()
        return sorted(self._network_owner)

    @property
    def section_models(self) -> dict[str, Any]:
        """Section name -> pydantic model; ``"module:Class"`` references are imported here, on first use."""
        self._ensure_claims()
        for section, model in self._section_models.items():
            if isinstance(model, str):
                self._section_models[section] = self._import_model(section, model)
        return dict(self._section_models)

    def _import_model(self, section: str, reference: str) -> Any:
        from ws.entrypoints import EntryPointRecord

        owner = self._section_owner[section]
        try:
            model = EntryPointRecord(section, reference, "", "").load()
        except Exception as exc:  # noqa: BLE001 - the plugin's fault, reported as such
            message = f"plugin {owner!r}: cannot import the model of [{section}] ({reference}): {exc}"
            raise PluginLoadError(message) from exc
        if not callable(getattr(model, "model_validate", None)):
            raise PluginLoadError(f"plugin {owner!r}: {reference} for [{section}] is not a pydantic model")
        return model

    # --- dispatch ---------------------------------------------------------------------------------------

    def call_backend(self, hook: str, workspace_type: str, **kwargs: Any) -> Any:
        """Call ``hook`` on the one plugin providing ``workspace_type``."""
        self.workspace_type(workspace_type)
        owner = self._type_owner.get(workspace_type) or self._type_owner[TYPE_ALIASES[workspace_type]]
        return self._call_owner(hook, owner, f"backend {owner!r}", **kwargs)

    def call_network(self, hook: str, network: str, **kwargs: Any) -> Any:
        """Call ``hook`` on the one plugin owning ``network``."""
        self._ensure_claims()
        owner = self._network_owner.get(network)
        if owner is None:
            raise PluginMissingError(self.missing_message("network", network))
        return self._call_owner(hook, owner, f"network plugin {owner!r}", **kwargs)

    def _call_owner(self, hook: str, owner: str, who: str, **kwargs: Any) -> Any:
        plugin = self.pm.get_plugin(owner)
        caller = self.pm.subset_hook_caller(hook, remove_plugins=[p for p in self.pm.get_plugins() if p is not plugin])
        if not caller.get_hookimpls():
            raise WsError(f"{who} does not implement {hook.removeprefix('ws_')}")
        return caller(**kwargs)

    def call_all(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call a contribution hook on every plugin; results in registration order."""
        self._ensure_claims()
        return list(reversed(getattr(self.pm.hook, hook)(**kwargs)))


def _one_plugin_result(pm: pluggy.PluginManager, name: str, hook: str, **kwargs: Any) -> Any:
    plugin = pm.get_plugin(name)
    caller = pm.subset_hook_caller(hook, remove_plugins=[p for p in pm.get_plugins() if p is not plugin])
    results = caller(**kwargs)
    return results[0] if results else None


def _import(module_name: str) -> ModuleType:
    import importlib

    return importlib.import_module(module_name)


def _name_set(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}
