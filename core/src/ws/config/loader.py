"""Finding and reading ws.toml, and turning validation failures into one readable error report."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ws.config.resolved import EMBEDDED_SOURCE
from ws.configfile import find_config
from ws.errors import ConfigError, ConfigProblem, WsError

if TYPE_CHECKING:
    from ws.config.resolved import Config
    from ws.plugins import Registry


def config_path(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The file :func:`ws.configfile.find_config` names, or None for the embedded default."""
    found = find_config(None if explicit is None else str(explicit), environ)
    return None if found is None else Path(found)


def load_config(explicit: Path | None, registry: Registry, environ: Mapping[str, str] | None = None) -> Config:
    """Read, validate and resolve the configuration; raise ConfigError listing every problem."""
    from ws.config.resolve import resolve

    environ = os.environ if environ is None else environ
    path = config_path(explicit, environ)
    if path is None:
        source, data = EMBEDDED_SOURCE, _embedded_default(registry)
    else:
        source, data = str(path), read_toml(path)
    return resolve(source, data, registry)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(str(path), [ConfigProblem("", "file not found")]) from None
    except PermissionError:
        raise WsError(f"{path}: permission denied (ws reads its configuration as the invoking user)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [ConfigProblem("", f"not valid TOML: {exc}")]) from None
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start}); TOML files are UTF-8"
        raise ConfigError(str(path), [ConfigProblem("", problem)]) from None
    except RecursionError:
        raise ConfigError(str(path), [ConfigProblem("", "arrays or tables are nested too deeply")]) from None


def _embedded_default(registry: Registry) -> dict[str, Any]:
    from importlib import resources  # only here: the import costs every other load 5 ms

    from ws.hints import first_party_first

    text = resources.files("ws.config").joinpath("default.toml").read_text()
    data = tomllib.loads(text)
    backends = [registry.types[name].name for name in first_party_first(registry.types)]
    if not backends:
        return {}  # no backend installed: no workspaces; commands that need one say what to install
    data["workspaces"]["demo"]["type"] = backends[0]
    return data
