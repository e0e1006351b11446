"""A plugin whose dependency is not installed: importing it fails like a real broken install would."""

import ws_plugin_broken_missing_dependency  # noqa: F401 - deliberately absent
