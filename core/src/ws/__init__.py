"""ws: isolated, reproducible developer workspaces on one Linux host.

Plugins import :data:`hookimpl` from here to mark their hook implementations.
"""

import pluggy

hookimpl = pluggy.HookimplMarker("ws")
"""Marker for hook implementations in plugins: ``@ws.hookimpl``."""

__version__ = "0.1.0"
"""Kept here, not read from package metadata, because importing importlib.metadata costs CLI start-up."""

__all__ = ["hookimpl", "__version__"]
