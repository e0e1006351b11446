"""Turning pydantic's validation errors into ws's configuration problems: dotted key paths, plain sentences."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ws.errors import ConfigProblem

if TYPE_CHECKING:
    from pydantic import ValidationError


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
