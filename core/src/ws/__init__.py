"""ws: isolated, reproducible developer workspaces on one Linux host.

Plugins import :data:`hookimpl` from here to mark their hook implementations.
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

hookimpl = pluggy.HookimplMarker("ws")
"""Marker for hook implementations in plugins: ``@ws.hookimpl``."""

try:
    __version__ = version("ws")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["hookimpl", "__version__"]
