"""The backend hooks of a plugin whose work lives in its package's modules, forwarded once for every backend.

A backend plugin keeps the work in modules whose functions take core's context first, then plain arguments:
``backend.create(ctx, workspace, request)`` (its result is the handle), ``backend.start(ctx, workspace,
handle)``, ``backend.stop``/``destroy``/``status``/``netns(ctx, workspace)``, ``access.exec_command(ctx,
workspace, command, interactive)``, ``access.logs(ctx, workspace, follow)``, ``doctor.checks(ctx)``. Its
plugin object (the entry point's target) is an instance of a subclass of :class:`BackendPlugin` that names
the package, adds its registration hook (``ws_workspace_types``) and overrides a forwarder only where its
backend differs. The hook contract (:mod:`ws.hookspecs`) is unchanged: this is one way to implement it.

Light on purpose (the plugin object is imported on every ``ws`` run): a module is imported by the first hook
that needs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar

from ws import hookimpl

if TYPE_CHECKING:
    from ws.api import Context, CreateRequest, DoctorCheck, NetnsRef, Workspace, WorkspaceStatus


class BackendPlugin:
    """Every backend hook but the registration, forwarded to ``PACKAGE.backend``, ``.access`` and ``.doctor``."""

    package: ClassVar[str]
    """The import name of the plugin's package, e.g. ``ws_plugin_nspawn``."""

    def module(self, name: str) -> ModuleType:
        return importlib.import_module(f"{self.package}.{name}")

    @hookimpl
    def ws_create(self, workspace: Workspace, request: CreateRequest, ctx: Context) -> object | None:
        return self.module("backend").create(ctx, workspace, request)

    @hookimpl
    def ws_start(self, workspace: Workspace, handle: object | None, ctx: Context) -> None:
        self.module("backend").start(ctx, workspace, handle)

    @hookimpl
    def ws_stop(self, workspace: Workspace, ctx: Context) -> None:
        self.module("backend").stop(ctx, workspace)

    @hookimpl
    def ws_destroy(self, workspace: Workspace, ctx: Context) -> None:
        """``purge`` is core's part: it removes the host folders after the backend removed the instance."""
        self.module("backend").destroy(ctx, workspace)

    @hookimpl
    def ws_status(self, workspace: Workspace, ctx: Context) -> WorkspaceStatus:
        return self.module("backend").status(ctx, workspace)

    @hookimpl
    def ws_exec(self, workspace: Workspace, ctx: Context, command: list[str], interactive: bool) -> int:
        return self.module("access").exec_command(ctx, workspace, command, interactive)

    @hookimpl
    def ws_logs(self, workspace: Workspace, ctx: Context, follow: bool) -> int:
        return self.module("access").logs(ctx, workspace, follow)

    @hookimpl
    def ws_instance_netns(self, workspace: Workspace, ctx: Context) -> NetnsRef | None:
        return self.module("backend").netns(ctx, workspace)

    @hookimpl
    def ws_doctor_checks(self, ctx: Context) -> list[DoctorCheck]:
        return self.module("doctor").checks(ctx)
