"""Plugins: loading them in isolation (:mod:`.loading`), the registry of what each one owns and the
low-level dispatch to an owner (:mod:`.registry`), and the typed calls core makes (:mod:`.dispatch`)."""

from ws.plugins.loading import ENTRY_POINT_GROUP, PluginManager
from ws.plugins.registry import PluginInfo, Registry

__all__ = ["ENTRY_POINT_GROUP", "PluginInfo", "PluginManager", "Registry"]
