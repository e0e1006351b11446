"""Finding and reading ws.toml, and turning validation failures into one readable error report."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ws.errors import ConfigError, ConfigProblem, WsError

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from ws.config.model import CoreConfig
    from ws.plugins import PluginManager
    from ws.types import Workspace

SYSTEM_CONFIG = Path("/etc/ws/ws.toml")
EMBEDDED_SOURCE = "embedded default configuration"
FIRST_PARTY_BACKENDS = ("incus", "nspawn", "microvm")
"""Preference order for the embedded default's ``demo`` workspace."""


@dataclass(frozen=True)
class Config:
    """The validated configuration with every workspace resolved."""

    source: str
    """The file read, or ``EMBEDDED_SOURCE``."""
    core: CoreConfig
    sections: dict[str, BaseModel]
    """Plugin sections (``[vpn]`` ...), validated by the owning plugin's model."""
    workspaces: dict[str, Workspace]


def config_path(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """``--config``, else ``$WS_CONFIG``, else /etc/ws/ws.toml if it exists, else None (embedded)."""
    if explicit is not None:
        return explicit
    if environ.get("WS_CONFIG"):
        return Path(environ["WS_CONFIG"])
    return SYSTEM_CONFIG if SYSTEM_CONFIG.exists() else None


def load_config(explicit: Path | None, plugins: PluginManager, environ: Mapping[str, str] | None = None) -> Config:
    """Read, validate and resolve the configuration; raise ConfigError listing every problem."""
    from ws.config.resolve import resolve

    environ = os.environ if environ is None else environ
    path = config_path(explicit, environ)
    if path is None:
        source, data = EMBEDDED_SOURCE, _embedded_default(plugins)
    else:
        source, data = str(path), read_toml(path)
    return resolve(source, data, plugins)


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


def _embedded_default(plugins: PluginManager) -> dict[str, Any]:
    text = resources.files("ws.config").joinpath("default.toml").read_text()
    data = tomllib.loads(text)
    backends = [name for name in FIRST_PARTY_BACKENDS if name in plugins.types]
    backends += [wt.name for wt in dict.fromkeys(plugins.types.values()) if wt.name not in backends]
    if not backends:
        return {}  # no backend installed: no workspaces; commands that need one say what to install
    data["workspaces"]["demo"]["type"] = backends[0]
    return data


def problems_from_validation(error: ValidationError, prefix: tuple[Any, ...] = ()) -> list[ConfigProblem]:
    """pydantic errors -> ConfigProblem with dotted key paths and plain sentences."""
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in (*prefix, *item["loc"]))
        problems.append(ConfigProblem(location, _sentence(item)))
    return problems


def _sentence(item: Mapping[str, Any]) -> str:
    kind, message = item["type"], item["msg"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind.endswith("_type") or kind in ("is_instance_of", "model_type", "model_attributes_type"):
        expected = message.removeprefix("Input should be ").removeprefix("a valid ").removeprefix("an instance of ")
        return f"wrong type: expected {expected}, got {toml_type(item['input'])}"
    return message.removeprefix("Value error, ")


def toml_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), type(value).__name__)
