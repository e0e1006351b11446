"""Loading plugins: core's built-ins, then every ``ws`` entry point, each in isolation.

Design (after tox 4's plugin manager): core registers its built-in plugins explicitly, then every entry
point in the ``ws`` group. An import error, a hook that does not match its spec, or an unknown ``ws_`` hook
unregisters *that* plugin, records the failure for ``ws plugins`` and logs a warning; the rest keep
working. ``WS_STRICT_PLUGINS=1`` turns failures into errors. What the loaded plugins own is asked later,
by the :class:`~ws.plugins.registry.Registry`, when something first needs it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy

from ws import hookspecs
from ws.errors import PluginLoadError
from ws.plugins.registry import PluginInfo, Registry, one_plugin_result

ENTRY_POINT_GROUP = "ws"
BUILTIN_PLUGINS = ("ws.builtin", "ws.sandbox.plugin")
"""Core's own plugins, registered explicitly (not through entry points) so they cannot go missing."""
CORE_DISTRIBUTION = "ws-core"


@dataclass(frozen=True)
class _Candidate:
    name: str
    distribution: str
    version: str
    load: Any  # () -> module or object


class PluginManager:
    """Finds and registers plugins; :attr:`registry` says what they own and calls the owner."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ
        self.pm = pluggy.PluginManager("ws")
        self.pm.add_hookspecs(hookspecs)
        self.registered: list[tuple[PluginInfo, object]] = []
        self.registry = Registry(self.pm, self.registered, self.fail)

    def load(self, extra: Iterable[tuple[str, object]] = ()) -> PluginManager:
        """Register built-ins, then entry points (filtered by WS_PLUGINS / WS_DISABLE_PLUGINS), then
        ``extra`` ``(name, plugin)`` pairs (used by tests to add an in-process plugin)."""
        from ws import __version__

        for module_name in BUILTIN_PLUGINS:
            self._add(_Candidate(module_name, CORE_DISTRIBUTION, __version__, lambda m=module_name: _import(m)))
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
            self.fail(info, exc)
            return
        try:
            self._check_unknown_hooks(plugin)
        except Exception as exc:  # noqa: BLE001
            self.pm.unregister(plugin)
            self.fail(info, exc)
            return
        info.hooks = sorted(
            caller.name for caller in self.pm.get_hookcallers(plugin) or () if caller.name.startswith("ws_")
        )
        self.registered.append((info, plugin))

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

    def fail(self, info: PluginInfo, exc: BaseException) -> None:
        """Record a plugin that failed to load (or to register its claims) and warn."""
        info.error = f"{type(exc).__name__}: {exc}"
        self.registry.failed_infos.append(info)
        self._warn(info, "failed to load", exc)

    def _warn(self, info: PluginInfo, what: str, exc: BaseException) -> None:
        message = f"plugin {info.name!r} from distribution {info.distribution!r} {what}: {type(exc).__name__}: {exc}"
        if _truthy(self.environ.get("WS_STRICT_PLUGINS")):
            raise PluginLoadError(message + " (WS_STRICT_PLUGINS is set)") from exc
        print(f"warning: {message}; ws continues without it", file=sys.stderr)

    def register_commands(self, cli: Any) -> None:
        """``ws_register_commands`` of each plugin on its own: one that raises costs only its commands, not
        ``ws --help`` and every other plugin's commands."""
        for info, plugin in self.registered:
            if not self.pm.is_registered(plugin):
                continue  # failed its registration hooks
            try:
                one_plugin_result(self.pm, info.name, hookspecs.ws_register_commands, cli=cli)
            except Exception as exc:  # noqa: BLE001 - any failure of a plugin must not break ws
                self._warn(info, "failed to add its commands", exc)


def _import(module_name: str) -> ModuleType:
    import importlib

    return importlib.import_module(module_name)


def _name_set(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}
