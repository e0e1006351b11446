"""Network agents: the long-running process a network asks for in its record (:class:`ws.types.NetworkAgent`).

Core runs every agent the same way, so a plugin only names the ``ws`` subcommand: after the network's
``ws_network_up`` the agent is started unless it runs, and before ``ws_network_down`` it is stopped. The
service is ``ws-agent-NETWORK`` under core's supervisor (a transient ``Type=notify`` unit with a watchdog
where systemd is PID 1, a detached process elsewhere). Where ``ws systemd install`` wrote the unit
``ws-agent-NETWORK.service``, that installed unit is started and stopped instead, so there is one agent
whichever command started it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ws.supervise import Supervisor
    from ws.types import Network

SERVICE_PREFIX = "ws-agent-"
LOG_FOLDER = "agents"


def service_name(network: str) -> str:
    """``ws-agent-NETWORK``: the supervised service, and with ``.service`` the unit ``ws systemd install`` writes."""
    return f"{SERVICE_PREFIX}{network}"


def argv(network: Network, config: Path | None) -> list[str]:
    """This interpreter running ``ws [--config FILE] <agent command>``: the same ws, found without PATH."""
    assert network.agent is not None
    selected = ["--config", str(config)] if config is not None else []
    return [sys.executable, "-m", "ws", *selected, *network.agent.command]


def ensure_running(network: Network, state_dir: Path, config: Path | None) -> list[str]:
    """Start the network's agent unless it runs (nothing for a network without one)."""
    from ws.supervise import ServiceSpec, SupervisorError

    if network.agent is None:
        return []
    name = service_name(network.name)
    supervisor = _supervisor(state_dir)
    if supervisor.status(name).running:
        return []
    if _installed_unit(name):
        from ws import systemd

        systemd.start_unit(f"{name}.service")
        return [f"started the installed unit {name}.service"]
    log_folder = state_dir / LOG_FOLDER
    log_folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    spec = ServiceSpec(
        name=name,
        argv=argv(network, config),
        log_file=log_folder / f"{network.name}.log",
        notify=True,
        watchdog_sec=network.agent.watchdog_sec,
        start_timeout=network.agent.start_timeout,
        stop_timeout=network.agent.stop_timeout,
        restart_sec=2.0,
    )
    try:
        pid = supervisor.start(spec)
    except SupervisorError as error:
        from ws.errors import WsError

        raise WsError(f"network {network.name}: cannot start its agent: {error}") from None
    return [f"started the {network.name} agent ({supervisor.kind}, pid {pid})"]


def stop(network: Network, state_dir: Path) -> list[str]:
    """Stop the network's agent, installed unit or supervised service (both are ``ws-agent-NETWORK``)."""
    if network.agent is None:
        return []
    return [f"stopped the {network.name} agent"] if _supervisor(state_dir).stop(service_name(network.name)) else []


def running(network: Network, state_dir: Path) -> bool:
    """Whether the network's agent process runs now (asked of systemd or the process record, never cached)."""
    return network.agent is not None and _supervisor(state_dir).status(service_name(network.name)).running


def _supervisor(state_dir: Path) -> Supervisor:
    from ws.supervise import supervisor_for

    return supervisor_for(state_dir)


def _installed_unit(name: str) -> bool:
    """Whether ``ws systemd install`` wrote this agent's unit and systemd (PID 1) knows it."""
    from ws.supervise import uses_systemd

    if not uses_systemd():
        return False
    from ws import systemd

    return systemd.unit_file_state(f"{name}.service") not in ("not-found", "transient")
