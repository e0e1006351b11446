"""What ``ws apply`` does: bring the host to the configuration in one step, like ``nixos-rebuild switch``.

The plan is computed without side effects (``ws apply --dry-run``), then carried out with the same
operations ``ws up``/``ws down`` use, so apply never differs from doing the steps by hand:

* every network the workspaces to run use (with what it requires, in dependency order) is brought up
  (``ws_network_up`` is idempotent; the plan says which are down now);
* autostart workspaces are brought up: created when absent, re-created when any fingerprint part changed,
  left alone when unchanged;
* running workspaces that are not autostart are re-created when changed, left alone otherwise; stopped
  ones stay stopped;
* workspaces ws has an instance record of (:mod:`ws.instances`) that are no longer configured are
  listed, and stopped with ``--prune``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ws import operations
from ws.context import Context
from ws.errors import WsError
from ws.instances import recorded_instances
from ws.types import State, Workspace

RUN = ("create", "recreate", "unchanged")
"""Workspace actions after which the workspace runs."""


@dataclass(frozen=True)
class NetworkStep:
    name: str
    action: str
    """``up`` (it is not up now) or ``unchanged`` (up; ``ws_network_up`` still repairs drift)."""
    reason: str


@dataclass(frozen=True)
class WorkspaceStep:
    name: str
    action: str
    """``create``, ``recreate``, ``unchanged``, ``leave`` (not autostart and not running), ``stop`` (no
    longer configured, ``--prune``), ``orphan`` (no longer configured; listed only)."""
    reasons: tuple[str, ...]
    state: str


@dataclass(frozen=True)
class ApplyPlan:
    networks: tuple[NetworkStep, ...]
    workspaces: tuple[WorkspaceStep, ...]

    def to_json(self) -> dict:
        return {
            "networks": [{"name": n.name, "action": n.action, "reason": n.reason} for n in self.networks],
            "workspaces": [
                {"name": w.name, "action": w.action, "reasons": list(w.reasons), "state": w.state}
                for w in self.workspaces
            ],
        }


def plan(ctx: Context, *, prune: bool = False) -> ApplyPlan:
    """What :func:`apply` would do, and why, read from the configuration, the backends and the state dir."""
    steps = [_configured_step(ctx, workspace) for workspace in sorted_workspaces(ctx)]
    steps += _leftover_steps(ctx, prune)
    running = [ctx.config.workspaces[s.name] for s in steps if s.action in RUN]
    networks = tuple(_network_step(ctx, network.name) for network in _networks_for(ctx, running))
    return ApplyPlan(networks, tuple(steps))


def sorted_workspaces(ctx: Context) -> list[Workspace]:
    return sorted(ctx.config.workspaces.values(), key=lambda w: w.name)


def _configured_step(ctx: Context, workspace: Workspace) -> WorkspaceStep:
    state = operations.status(ctx, workspace).state
    if not workspace.autostart and state != State.RUNNING:
        return WorkspaceStep(workspace.name, "leave", ("not autostart",), state.value)
    item = operations.plan(ctx, workspace)
    return WorkspaceStep(workspace.name, item.action, item.reasons, item.state.value)


def _leftover_steps(ctx: Context, prune: bool) -> list[WorkspaceStep]:
    steps = []
    for record in recorded_instances(ctx.state.root, ctx.registry):
        if record.name in ctx.config.workspaces:
            continue
        if record.workspace is None:
            steps.append(WorkspaceStep(record.name, "orphan", ("no longer configured", record.problem), "unknown"))
            continue
        try:
            state = ctx.backend(record.workspace).status().state.value
        except WsError as exc:
            state = f"unknown ({exc})"
        action = "stop" if prune else "orphan"
        steps.append(WorkspaceStep(record.name, action, ("no longer configured",), state))
    return steps


def _networks_for(ctx: Context, workspaces: list[Workspace]):
    return [n for n in operations.networks_in_order(ctx, [w.network for w in workspaces]) if n.up_before_workspaces]


def _network_step(ctx: Context, name: str) -> NetworkStep:
    from ws import hookspecs

    if not ctx.registry.implements(hookspecs.ws_network_status, name):
        return NetworkStep(name, "up", "its plugin cannot say whether it is up")
    report = ctx.network(name).status()
    if report.up:
        return NetworkStep(name, "unchanged", "up")
    return NetworkStep(name, "up", f"not up: {report.detail}" if report.detail else "not up")


@dataclass(frozen=True)
class Outcome:
    plan: ApplyPlan
    network_changes: tuple[tuple[str, tuple[str, ...]], ...]
    results: tuple[tuple[str, str, str], ...]
    """(workspace, what was done, state after) for every workspace apply acted on."""

    @property
    def changed(self) -> bool:
        """Whether apply changed anything: a second apply right after the first must say False."""
        return any(changes for _name, changes in self.network_changes) or any(
            action != "unchanged" for _name, action, _state in self.results
        )


def apply(ctx: Context, run_in_parallel, *, prune: bool = False) -> Outcome:
    """Carry out the plan: networks first (no workspace lock held), then the workspaces (in parallel,
    each under its own lock, through ``operations.up``/``down``). ``run_in_parallel(function, items)``
    is the CLI's runner, which reports every failure and raises the first."""
    the_plan = plan(ctx, prune=prune)
    to_run = [ctx.config.workspaces[s.name] for s in the_plan.workspaces if s.action in RUN]
    changes = tuple((name, tuple(items)) for name, items in operations.bring_networks_up(ctx, to_run))
    leftovers = {r.name: r.workspace for r in recorded_instances(ctx.state.root, ctx.registry)}
    to_stop = [leftovers[s.name] for s in the_plan.workspaces if s.action == "stop" and leftovers.get(s.name)]
    results = []
    if to_run:
        for result in run_in_parallel(lambda w: operations.up(ctx, w), to_run):
            results.append((result.name, result.action, result.status.state.value))
    if to_stop:
        for workspace, status in zip(to_stop, run_in_parallel(lambda w: operations.down(ctx, w), to_stop), strict=True):
            results.append((workspace.name, "stopped", status.state.value))
    return Outcome(the_plan, changes, tuple(results))
