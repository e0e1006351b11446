"""What ``ws list``, ``ws status`` and name completion need, at interactive speed: the configured
workspaces (from the configuration snapshot, see :mod:`ws.snapshot`, or a full load when there is none)
and their real states, asked of each backend at once with ``ws_status_many`` (one request for all its
workspaces), or with ``ws_status`` one workspace at a time, on the full configuration, for backends
without it. Both sources give the same workspaces, so the commands print the same either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ws import hookspecs
from ws.errors import WsError, unknown_workspace
from ws.plugins.registry import one_plugin_result

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pluggy

    from ws.context import Context
    from ws.records import Workspace, WorkspaceStatus


class Overview:
    """The workspaces of one configuration and a way to ask for their states. (A plain class: a dataclass
    costs these commands half a millisecond to create.)"""

    def __init__(
        self,
        source: str,
        state_dir: Path,
        workspaces: dict[str, Workspace],
        owners: dict[str, str],
        pm: pluggy.PluginManager,
        full_context: Callable[[], Context],
    ):
        self.source = source
        self.state_dir = state_dir
        self.workspaces = workspaces
        """Every workspace with its backend options as plain data (:func:`ws.snapshot.plain`)."""
        self.owners = owners
        """The plugin providing each of the workspaces' types, by type name."""
        self.pm = pm
        self.full_context = full_context
        """The fully loaded configuration, for backends without ``ws_status_many`` (loaded on first call)."""

    @classmethod
    def of_context(cls, ctx: Context) -> Overview:
        from ws.snapshot import plain

        workspaces = {name: plain(workspace) for name, workspace in ctx.config.workspaces.items()}
        owners = {w.type: ctx.registry.owner_of_type(w.type) for w in workspaces.values()}
        return cls(ctx.config.source, ctx.state.root, workspaces, owners, ctx.plugins.pm, lambda: ctx)

    def workspace(self, name: str) -> Workspace:
        """The workspace ``name`` or a usage error listing the configured ones."""
        try:
            return self.workspaces[name]
        except KeyError:
            raise unknown_workspace(name, self.workspaces, self.source) from None

    def statuses(self, workspaces: list[Workspace], brief: bool) -> list[WorkspaceStatus | WsError]:
        """Each workspace's state as its backend reports it, or the error its backend raised for it; with
        ``brief`` only the ``state`` of each is meant to be used (see ``ws_status_many``)."""
        by_type: dict[str, list[Workspace]] = {}
        for workspace in workspaces:
            by_type.setdefault(workspace.type, []).append(workspace)
        answers: dict[str, WorkspaceStatus | WsError] = {}
        for type_name, group in by_type.items():
            try:
                batch = self._status_many(self.owners[type_name], group, brief)
            except WsError as exc:
                batch = dict.fromkeys((w.name for w in group), exc)
            if batch is None:
                answers.update(self._one_by_one(group))
                continue
            for workspace in group:
                missing = WsError(f"the {type_name} backend reported no state for {workspace.name}")
                answers[workspace.name] = batch.get(workspace.name, missing)
        return [answers[workspace.name] for workspace in workspaces]

    def _status_many(self, owner: str, group: list[Workspace], brief: bool) -> dict | None:
        """``ws_status_many`` of the plugin ``owner``, called by name (the snapshot knows each type's owner
        without asking every plugin for its claims); None when the plugin does not implement it."""
        hook = hookspecs.ws_status_many
        return one_plugin_result(self.pm, owner, hook, workspaces=group, state_dir=self.state_dir, brief=brief)

    def _one_by_one(self, group: list[Workspace]) -> dict[str, WorkspaceStatus | WsError]:
        ctx = self.full_context()
        answers: dict[str, WorkspaceStatus | WsError] = {}
        for workspace in group:
            try:
                answers[workspace.name] = ctx.backend(ctx.workspace(workspace.name)).status()
            except WsError as exc:
                answers[workspace.name] = exc
        return answers
