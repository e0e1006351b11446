"""What each loaded plugin owns (workspace types, networks, configuration sections) and the call to an owner.

When something first needs it (dispatch, configuration, ``ws plugins``), each plugin's registration hooks
run on that plugin alone. A type, alias, network or section already claimed by another plugin makes the
*new* plugin fail to load; the first owner keeps working, so there is never a tie. Backend and network
hooks are then called through a pluggy *subset* hook caller that contains only the owning plugin: two
backends can never both act on one workspace, and a backend never checks ``workspace.type`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from ws import hookspecs
from ws.errors import PluginLoadError, PluginMissingError, WsError
from ws.hints import INSTALL_HINTS, install_hint

if TYPE_CHECKING:
    from ws.types import WorkspaceType


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


Hook = Callable[..., Any]
"""A hook spec function of :mod:`ws.hookspecs`: calls name hooks by their spec, never by a string."""


class Registry:
    """The type/network/section registry and dispatch to the one owner."""

    def __init__(self, pm: pluggy.PluginManager, registered: list, fail: Callable[[PluginInfo, BaseException], None]):
        self.pm = pm
        self._registered = registered
        self._fail = fail
        self._claims_made = False
        self._loaded: list[PluginInfo] = []
        self.failed_infos: list[PluginInfo] = []
        self._types: dict[str, WorkspaceType] = {}
        self._type_owner: dict[str, str] = {}
        self._network_owner: dict[str, str] = {}
        self._section_owner: dict[str, str] = {}
        self._models: dict[str, Any] = {}
        """Section -> model class or its not yet imported ``"module:Class"``. A type's options model is the
        model of the section named after the type (``[incus]``)."""

    # --- claims -------------------------------------------------------------------------------------------

    def _ensure_claims(self) -> None:
        """Run the registration hooks of every registered plugin, in load order, once."""
        if self._claims_made:
            return
        self._claims_made = True
        for info, plugin in self._registered:
            try:
                self._claim(info)
            except Exception as exc:  # noqa: BLE001 - any failure of a plugin must not break ws
                self.pm.unregister(plugin)
                self._fail(info, exc)
            else:
                self._loaded.append(info)

    def _claim(self, info: PluginInfo) -> None:
        """Ask the new plugin what it provides; refuse names another plugin already owns."""
        from ws.types import WorkspaceType

        name = info.name
        types = one_plugin_result(self.pm, name, hookspecs.ws_workspace_types) or []
        networks = one_plugin_result(self.pm, name, hookspecs.ws_networks) or []
        sections = one_plugin_result(self.pm, name, hookspecs.ws_config_sections) or {}
        for wtype in types:
            if not isinstance(wtype, WorkspaceType):
                raise PluginLoadError(f"ws_workspace_types returned {wtype!r}, not a ws.types.WorkspaceType")
            if wtype.options_model is not None:
                _check_model(wtype.options_model, f"the options of type {wtype.name!r}")
        for section, model in sections.items():
            _check_model(model, f"[{section}]")
        claims = [("type", t, self._type_owner) for wt in types for t in (wt.name, *wt.aliases)]
        claims += [("network", n, self._network_owner) for n in networks]
        option_sections = {wt.name: wt.options_model for wt in types if wt.options_model is not None}
        claims += [("config section", s, self._section_owner) for s in [*sections, *option_sections]]
        for kind, claimed, owners in claims:
            if claimed in owners:
                raise PluginLoadError(f"{kind} {claimed!r} is already provided by plugin {owners[claimed]!r}")
        for _kind, claimed, owners in claims:
            owners[claimed] = name
        for wtype in types:
            self._types[wtype.name] = wtype
            for alias in wtype.aliases:
                self._types[alias] = wtype
        self._models.update(sections)
        self._models.update(option_sections)
        info.types = sorted(wt.name for wt in types)
        info.networks = sorted(networks)
        info.sections = sorted([*sections, *option_sections])

    @property
    def loaded(self) -> list[PluginInfo]:
        self._ensure_claims()
        return self._loaded

    @property
    def failed(self) -> list[PluginInfo]:
        """Plugins that failed to load or to register their claims (filled by the loader's fail callback)."""
        self._ensure_claims()
        return self.failed_infos

    @property
    def types(self) -> dict[str, WorkspaceType]:
        """Registered workspace types by name and alias."""
        self._ensure_claims()
        return self._types

    @property
    def networks(self) -> list[str]:
        self._ensure_claims()
        return sorted(self._network_owner)

    @property
    def sections(self) -> list[str]:
        self._ensure_claims()
        return sorted(self._section_owner)

    def workspace_type(self, name: str) -> WorkspaceType:
        """The registered type for ``name`` (aliases included), or a PluginMissingError saying what to install."""
        wtype = self.types.get(name)
        if wtype is None:
            raise PluginMissingError(self.missing_message("workspace type", name))
        return wtype

    def missing_message(self, kind: str, name: str) -> str:
        distribution = INSTALL_HINTS.get(name)
        failed = [f for f in self.failed if f.distribution == distribution]
        if failed:
            return (
                f"{kind} {name!r} comes from {distribution}, which is installed but failed to load: {failed[0].error}"
            )
        if distribution:
            return f"no installed plugin provides {kind} {name!r}; {install_hint(name)}"
        known = {"workspace type": self.types, "network": self._network_owner}.get(kind, self._section_owner)
        return f"no installed plugin provides {kind} {name!r} (installed: {', '.join(sorted(known)) or 'none'})"

    def section_model(self, section: str) -> Any:
        """The pydantic model of a plugin's ``[section]`` or of a type's options (imported on first use)."""
        self._ensure_claims()
        model = self._models[section]
        if isinstance(model, str):
            from ws.entrypoints import EntryPointRecord

            owner = self._section_owner[section]
            try:
                loaded = EntryPointRecord(section, model, "", "").load()
            except Exception as exc:  # noqa: BLE001 - the plugin's fault, reported as such
                message = f"plugin {owner!r}: cannot import the model of [{section}] ({model}): {exc}"
                raise PluginLoadError(message) from exc
            if not callable(getattr(loaded, "model_validate", None)):
                raise PluginLoadError(f"plugin {owner!r}: {model} for [{section}] is not a pydantic model")
            self._models[section] = model = loaded
        return model

    # --- dispatch -----------------------------------------------------------------------------------------

    def call_backend(self, hook: Hook, type_name: str, /, **kwargs: Any) -> Any:
        """Call ``hook`` on the one plugin providing the type ``type_name`` (a name or alias)."""
        owner = self.owner_of_type(type_name)
        return self._call_owner(hook, owner, f"backend {owner!r}", **kwargs)

    def call_network(self, hook: Hook, network_name: str, /, **kwargs: Any) -> Any:
        """Call ``hook`` on the one plugin owning the network ``network_name``."""
        self._ensure_claims()
        owner = self._network_owner.get(network_name)
        if owner is None:
            raise PluginMissingError(self.missing_message("network", network_name))
        return self._call_owner(hook, owner, f"network plugin {owner!r}", **kwargs)

    def implements(self, hook: Hook, network: str) -> bool:
        """Whether the owner of ``network`` implements ``hook`` (optional network hooks)."""
        self._ensure_claims()
        owner = self._network_owner.get(network)
        return owner is not None and bool(_owner_caller(self.pm, owner, hook.__name__).get_hookimpls())

    def owner_of_type(self, type_name: str) -> str:
        """The name of the plugin providing the type ``type_name`` (a name or alias)."""
        return self._type_owner[self.workspace_type(type_name).name]

    def _call_owner(self, hook: Hook, owner: str, who: str, **kwargs: Any) -> Any:
        caller = _owner_caller(self.pm, owner, hook.__name__)
        if not caller.get_hookimpls():
            raise WsError(f"{who} does not implement {hook.__name__.removeprefix('ws_')}")
        return caller(**kwargs)

    def call_all(self, hook: Hook, **kwargs: Any) -> list[Any]:
        """Call a contribution or event hook on every plugin; results in registration order."""
        self._ensure_claims()
        return list(reversed(getattr(self.pm.hook, hook.__name__)(**kwargs)))


def one_plugin_result(pm: pluggy.PluginManager, name: str, hook: Hook, **kwargs: Any) -> Any:
    """The result of ``hook`` on the plugin registered as ``name`` alone (None when it does not implement it)."""
    caller = _owner_caller(pm, name, hook.__name__)
    results = caller(**kwargs)
    if caller.spec is not None and caller.spec.opts.get("firstresult"):
        return results
    return results[0] if results else None


def _owner_caller(pm: pluggy.PluginManager, owner: str, hook_name: str) -> Any:
    plugin = pm.get_plugin(owner)
    return pm.subset_hook_caller(hook_name, remove_plugins=[p for p in pm.get_plugins() if p is not plugin])


def _check_model(model: Any, what: str) -> None:
    """A ``"module:Class"`` reference (imported only when the configuration is read) or a pydantic model."""
    if isinstance(model, str):
        if ":" not in model:
            raise PluginLoadError(f"{model!r} for {what} is not 'module:Class'")
    elif not callable(getattr(model, "model_validate", None)):  # duck-typed: pydantic is not imported here
        raise PluginLoadError(f"ws_config_sections returned {model!r} for {what}, not a pydantic model")
