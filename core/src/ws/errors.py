"""Errors a user sees as one sentence (no traceback), each with the exit status the CLI returns."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class WsError(Exception):
    """An operation failed; the message is written for the user. Exit status 1."""

    exit_code = 1


class UsageError(WsError):
    """The command line asks for something that cannot be done as asked. Exit status 2."""

    exit_code = 2


@dataclass(frozen=True)
class ConfigProblem:
    """One configuration error: where (dotted key path) and what."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ConfigError(WsError):
    """The configuration is invalid; every problem found is listed. Exit status 2."""

    exit_code = 2

    def __init__(self, source: str, problems: list[ConfigProblem]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} configuration error{'s' if len(problems) != 1 else ''}"]
        lines += [f"  {source}: {problem}" for problem in problems]
        super().__init__("\n".join(lines))


class PluginMissingError(WsError):
    """The plugin needed for a workspace type, network or section is not installed. Exit status 3."""

    exit_code = 3


class PluginLoadError(WsError):
    """A plugin failed to load and strict plugin loading is on (WS_STRICT_PLUGINS=1)."""

    exit_code = 3


def unknown_workspace(name: str, known: Iterable[str], source: str) -> UsageError:
    """The error for a workspace name the configuration ``source`` does not declare, listing those it does."""
    names = ", ".join(sorted(known)) or "none"
    return UsageError(f"no workspace {name!r} in {source} (configured: {names})")
