"""Shared pieces of every ``ws`` command: how a command gets its Context, ``--json``, JSON output."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pathlib import Path

    from ws.context import Context
    from ws.overview import Overview
    from ws.plugins import PluginManager
    from ws.snapshot import Pending, Snapshot

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    """What the global options said; the Context is built from it on first use, so ``--help`` and
    commands that need no configuration never load it."""

    config_path: Path | None = None
    extra_plugins: list[tuple[str, object]] = field(default_factory=list)
    """In-process plugins to register besides the entry points (tests, embedding)."""
    _plugins: PluginManager | None = field(default=None, repr=False)
    _context: Context | None = field(default=None, repr=False)
    _snapshot_valid: bool = field(default=False, repr=False)
    """A valid snapshot was found: a full load after it (a backend without ``ws_status_many``) keeps it."""

    def plugins(self) -> PluginManager:
        if self._plugins is None:
            from ws.plugins import PluginManager

            self._plugins = PluginManager().load(self.extra_plugins)
        return self._plugins

    def context(self) -> Context:
        """The fully loaded configuration; a successful load also refreshes its snapshot (:mod:`ws.snapshot`)."""
        if self._context is None:
            from ws.context import load_context

            pending = self._snapshot_key()
            self._context = load_context(self.config_path, self.plugins())
            self._context.report_progress = _progress
            if pending is not None and not self._snapshot_valid:
                pending.save(self._context.config, self._context.registry)
        return self._context

    def overview(self) -> Overview:
        """The workspaces for ``ws list``, ``ws status`` and completion: from the configuration's snapshot
        when it is valid (no pydantic, no resolve), else from the full load."""
        from ws.overview import Overview

        found = self._snapshot()
        if found is not None:
            from pathlib import Path

            state_dir, pm = Path(found.state_dir), self.plugins().pm
            return Overview(found.source, state_dir, found.workspaces(), found.owners, pm, self.context)
        return Overview.of_context(self.context())

    def workspace_names(self) -> list[str]:
        """The configured workspaces' names (for completion: from the snapshot, without any status)."""
        found = self._snapshot()
        return found.names if found is not None else list(self.context().config.workspaces)

    def _snapshot(self) -> Snapshot | None:
        """The configuration's valid snapshot, unless the configuration is loaded already."""
        if self._context is not None:
            return None
        from ws import snapshot

        pending = self._snapshot_key()
        found = snapshot.load(pending) if pending is not None else None
        self._snapshot_valid = found is not None
        return found

    def _snapshot_key(self) -> Pending | None:
        import os

        from ws import snapshot
        from ws.configfile import find_config

        given = None if self.config_path is None else str(self.config_path)
        return snapshot.prepare(find_config(given, os.environ), self.plugins(), os.environ)


def _progress(message: str) -> None:
    """Progress of long operations: one line each on stderr (stdout stays for results and --json)."""
    click.echo(message, err=True)


def pass_ws_context(function: F) -> F:
    """Decorator: call the command with the loaded :class:`ws.context.Context` as first argument, then run
    the work the command deferred (:meth:`ws.context.Context.defer`)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = click.get_current_context().find_object(CliState) or CliState()
        ctx = state.context()
        try:
            return function(ctx, *args, **kwargs)
        finally:
            ctx.run_deferred()

    return wrapper  # type: ignore[return-value]


json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")


def print_json(data: Any) -> None:
    """Stable, indented JSON on stdout (dataclasses, paths, enums and addresses are converted)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=_jsonable))


def _jsonable(value: Any) -> Any:
    import dataclasses
    import enum

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def workspace_names(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of workspace names from the configuration (silent when it cannot be read)."""
    from click.shell_completion import CompletionItem

    try:
        given = ctx.find_object(CliState)  # callbacks do not run here: only obj= passed by the caller
        given_path = ctx.find_root().params.get("config_path")
        state = CliState(extra_plugins=given.extra_plugins if given else [])
        if given_path:
            from pathlib import Path

            state.config_path = Path(given_path)
        names = state.workspace_names()
    except Exception:  # noqa: BLE001 - completion must never print errors into the shell
        return []
    return [CompletionItem(name) for name in sorted(names) if name.startswith(incomplete)]
