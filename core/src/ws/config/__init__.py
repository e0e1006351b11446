"""Declarative configuration: reading ws.toml, validating it, and resolving every workspace.

``load_config`` is the one entry point; the model is in :mod:`ws.config.model`, cross-field rules and
derived identities in :mod:`ws.config.resolve`.
"""

from ws.config.loader import load_config
from ws.config.resolved import Config

__all__ = ["Config", "load_config"]
