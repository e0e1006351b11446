"""The unit files for a configuration, as text: what ``ws systemd install`` writes (no side effects).

Every unit runs a ``ws`` command, so the command line stays the single source of behaviour:

* ``ws-networks.service`` (oneshot): ``ws network up`` for the networks the autostart workspaces use,
  after ``network-online.target`` and ``nftables.service``; reloaded with nftables.service (its
  ``ExecReload`` runs the same command: the backstop that restores ws's tables after a ruleset flush when
  the network's own guard, :mod:`ws.network.guard`, has not already done so within a second) and restarted
  with it (``PartOf``); wanted by nftables.service, so starting it again after a stop brings them back.
* ``ws-agent-NETWORK.service`` for a network whose record asks for an agent (:class:`ws.types.NetworkAgent`):
  ``Type=notify``, ``WatchdogSec``, restarted with back-off, after the networks unit.
* ``ws-workspace-NAME.service`` (oneshot) per autostart workspace: ``ws up NAME`` / ``ws down NAME``, after
  the networks unit and the backend's host services; on a network with an agent after the agent and bound
  to it (``BindsTo``: stopped when it stops).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ws import agents, operations
from ws.context import Context
from ws.systemd import BACKOFF_VERSION
from ws.types import Network, Workspace

NETWORKS_UNIT = "ws-networks.service"
HEADER_MARK = "# Written by `ws systemd install`"
"""How every unit file ws writes begins: ws removes only files that do."""
HEADER = HEADER_MARK + " from {config}; `ws apply` keeps it current. Edits are overwritten.\n"


def workspace_unit(name: str) -> str:
    return f"ws-workspace-{name}.service"


def agent_unit(network: str) -> str:
    """The same name as the agent core runs without installed units (:mod:`ws.agents`), so there is one."""
    return f"{agents.service_name(network)}.service"


@dataclass(frozen=True)
class Invocation:
    """How the units call ws: the same program, configuration file and login user as ``ws systemd install``."""

    program: str
    """The ``ws`` executable (absolute path)."""
    config: str | None
    """``--config`` (absolute path), or None for ws's default lookup."""
    environment: tuple[tuple[str, str], ...] = ()
    """Variables that make ws resolve the same login user as the installing ``sudo ws`` (SUDO_USER...)."""
    systemd_version: int = 0

    def command(self, *args: str) -> str:
        config = ("--config", self.config) if self.config else ()
        return " ".join(_quote(part) for part in (self.program, *config, *args))


def render(ctx: Context, invocation: Invocation) -> dict[str, str]:
    """Unit name -> content for the configuration in ``ctx`` (nothing when no workspace is autostart)."""
    autostart = sorted((w for w in ctx.config.workspaces.values() if w.autostart), key=lambda w: w.name)
    if not autostart:
        return {}
    header = HEADER.format(config=invocation.config or "ws's default configuration")
    in_order = operations.networks_in_order(ctx, [w.network for w in autostart])
    units = {NETWORKS_UNIT: header + _networks_unit(in_order, invocation)}
    for network in in_order:
        if network.agent is not None:
            units[agent_unit(network.name)] = header + _agent_unit(network, invocation)
    for workspace in autostart:
        chain = operations.networks_in_order(ctx, [workspace.network])
        host_services = ctx.registry.workspace_type(workspace.type).host_services
        units[workspace_unit(workspace.name)] = header + _workspace_unit(workspace, chain, host_services, invocation)
    return units


def _networks_unit(networks: list[Network], invocation: Invocation) -> str:
    names = [n.name for n in networks if n.up_before_workspaces]
    up = invocation.command("network", "up", *names) if names else "/bin/true"
    return _unit(
        {
            "Description": f"ws networks ({', '.join(names) or 'none'})",
            "Wants": "network-online.target",
            "After": "network-online.target nftables.service",
            "PartOf": "nftables.service",
            "ReloadPropagatedFrom": "nftables.service",
        },
        {
            "Type": "oneshot",
            "RemainAfterExit": "yes",
            **_environment(invocation),
            "ExecStart": up,
            "ExecReload": up,
        },
        wanted_by="multi-user.target nftables.service",  # nftables stopped (PartOf stops us), then started
    )


def _agent_unit(network: Network, invocation: Invocation) -> str:
    assert network.agent is not None
    service = {
        "Type": "notify",
        "NotifyAccess": "main",
        **_environment(invocation),
        "ExecStart": invocation.command(*network.agent.command),
        "WatchdogSec": f"{network.agent.watchdog_sec}s",
        "TimeoutStartSec": f"{network.agent.start_timeout:g}s",
        "TimeoutStopSec": f"{network.agent.stop_timeout:g}s",
        "Restart": "always",
    }
    if invocation.systemd_version >= BACKOFF_VERSION:
        service |= {"RestartSec": "2s", "RestartSteps": "8", "RestartMaxDelaySec": "5min"}
    else:
        service["RestartSec"] = "15s"  # no increasing delays before systemd 254: a fixed, moderate one
    return _unit(
        {
            "Description": f"ws agent of network {network.name}",
            "Wants": f"network-online.target {NETWORKS_UNIT}",
            "After": f"network-online.target {NETWORKS_UNIT}",
            "StartLimitIntervalSec": "0",  # never give up; the restart delay is the back-off
        },
        service,
    )


def _workspace_unit(
    workspace: Workspace, chain: list[Network], host_services: tuple[str, ...], invocation: Invocation
) -> str:
    agents = [agent_unit(n.name) for n in chain if n.agent is not None]
    unit = {
        "Description": f"ws workspace {workspace.name} ({workspace.type})",
        "Wants": f"network-online.target {NETWORKS_UNIT}",
        "After": " ".join(["network-online.target", NETWORKS_UNIT, *host_services, *agents]),
    }
    if agents:
        unit["BindsTo"] = " ".join(agents)
    return _unit(
        unit,
        {
            "Type": "oneshot",
            "RemainAfterExit": "yes",
            **_environment(invocation),
            "ExecStart": invocation.command("up", workspace.name),
            "ExecStop": invocation.command("down", workspace.name),
            "TimeoutStartSec": "30min",  # a first boot may build ws's image
            "TimeoutStopSec": "5min",
        },
    )


def _environment(invocation: Invocation) -> dict[str, str]:
    if not invocation.environment:
        return {}
    return {"Environment": " ".join(_quote(f"{key}={value}", command=False) for key, value in invocation.environment)}


def _unit(unit: dict[str, str], service: dict[str, str], wanted_by: str = "multi-user.target") -> str:
    sections = [("Unit", unit), ("Service", service), ("Install", {"WantedBy": wanted_by})]
    return "\n".join(
        f"[{title}]\n" + "".join(f"{key}={value}\n" for key, value in entries.items()) for title, entries in sections
    )


def _quote(argument: str, command: bool = True) -> str:
    """One word of a unit's command line or Environment= (systemd's quoting; % and, in commands, $ taken
    literally)."""
    escaped = argument.replace("%", "%%")
    if command:
        escaped = escaped.replace("$", "$$")
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
