"""The public API for plugin authors: everything a plugin imports from ws, in one module.

``from ws.api import hookimpl, Workspace, WorkspaceType, Context, WsError, wait_for_ssh`` ... The hook
contract itself is :mod:`ws.hookspecs` (documented in docs/plugins.md). Importing this module costs the
dataclasses of :mod:`ws.types`: plugin modules import it inside their hooks or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from ws import hookimpl
from ws.errors import ConfigError, ConfigProblem, PluginMissingError, UsageError, WsError
from ws.preparation import CreateRequest, PreparedImage
from ws.readiness import sshd_answers, wait_for_ssh
from ws.types import (
    CheckStatus,
    DoctorCheck,
    MaintenanceResult,
    Mount,
    NetnsRef,
    Network,
    NetworkAgent,
    NetworkAttachment,
    NetworkStatus,
    ProvisionFile,
    State,
    Workspace,
    WorkspacePaths,
    WorkspaceStatus,
    WorkspaceType,
)

if TYPE_CHECKING:
    from pathlib import Path

    from ws.config.resolved import Config
    from ws.provision import Bundle, LoginUser


class StateDirLike(Protocol):
    root: Path


class Context(Protocol):
    """What every hook receives as ``ctx`` (implemented by :class:`ws.context.Context`)."""

    config: Config
    """The validated configuration: ``core`` (ws's own keys), ``sections`` (plugin sections),
    ``workspaces`` (resolved :class:`Workspace` by name), ``networks`` (:class:`Network` by name)."""
    state: StateDirLike
    """``state.root``: ws's state directory; a plugin keeps its files under ``state.root / <plugin>``."""
    log: Any
    """A structlog logger (secrets redacted)."""
    done: set[str]
    """Work this command has done and need not repeat (keys a plugin chooses, prefixed with its name)."""

    def progress(self, message: str) -> None:
        """Tell the user what a long operation is doing (one short line; shown on stderr)."""

    def lock(self, kind: str, name: str, timeout: float = ...) -> AbstractContextManager[None]:
        """Exclusive flock of one resource. Order: workspace, then network, then anything else."""

    def workspace(self, name: str) -> Workspace:
        """The resolved workspace ``name`` (a usage error when it is not configured)."""

    def defer(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the command's workspaces are all up (optional background work)."""

    @property
    def login_user(self) -> LoginUser:
        """The guest login user."""

    def provisioning(self, workspace: Workspace, attachment: NetworkAttachment) -> Bundle:
        """The workspace's provisioning bundle (core's files plus every plugin's contribution)."""


__all__ = [
    "CheckStatus",
    "ConfigError",
    "ConfigProblem",
    "Context",
    "CreateRequest",
    "DoctorCheck",
    "MaintenanceResult",
    "Mount",
    "NetnsRef",
    "Network",
    "NetworkAgent",
    "NetworkAttachment",
    "NetworkStatus",
    "PluginMissingError",
    "PreparedImage",
    "ProvisionFile",
    "State",
    "UsageError",
    "Workspace",
    "WorkspacePaths",
    "WorkspaceStatus",
    "WorkspaceType",
    "WsError",
    "hookimpl",
    "sshd_answers",
    "wait_for_ssh",
]
