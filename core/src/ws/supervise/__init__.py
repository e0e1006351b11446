"""Long-running processes (an nspawn container, a microVM, the VPN agent) that outlive the ``ws`` command.

One interface, two implementations chosen per host by :func:`supervisor_for`:

* where systemd is PID 1 and its bus answers, a transient unit per service (``ws.supervise.systemd``): cgroup
  limits, watchdog and the journal come from systemd;
* elsewhere (containers, CI hosts) a detached process (``ws.supervise.detached``): double-forked into its own
  session and cgroups (with the cpu and memory limits written there, where the host's cgroups allow), a pid file
  that records the process start time (a reused pid is never mistaken for the service), output appended to the
  service's log file.

Status is always read from the real process (or unit), never from a cache.
"""

from __future__ import annotations

import functools
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ServiceSpec:
    """What to run. ``name`` is unique per host (``ws-nspawn-dev``); under systemd it is ``<name>.service``.

    ``environment`` is the child's whole environment apart from ``PATH`` (ws's own is not inherited, so a secret
    in it never reaches a child). ``cpus``/``memory_mib`` are the unit's ``CPUQuota``/``MemoryMax`` under
    systemd; the detached supervisor writes them into the service's own cgroups where the host's cgroup
    hierarchies allow (:mod:`ws.supervise.cgroups`) and reports what applies in :attr:`ServiceStatus.limits`.
    ``notify``/``watchdog_sec`` need systemd.
    """

    name: str
    argv: tuple[str, ...] | list[str]
    log_file: Path
    environment: dict[str, str] = field(default_factory=dict)
    stop_timeout: float = 30.0
    stop_signal: int = signal.SIGTERM
    cpus: float | None = None
    memory_mib: int | None = None
    notify: bool = False
    watchdog_sec: float | None = None
    start_timeout: float | None = None
    """How long a ``notify`` service may take to report ready (systemd's default is 90 s)."""
    restart_sec: float | None = None
    """Restart it whenever it exits, after this delay growing in steps (systemd supervisor only: the
    detached one restarts nothing; the next ``ws network up`` starts it again)."""


@dataclass(frozen=True)
class ServiceStatus:
    running: bool
    pid: int | None = None
    started_at: float | None = None  # seconds since the epoch
    limits: tuple[str, ...] = ()
    """What applies of the spec's ``cpus``/``memory_mib``, one sentence each (the detached supervisor's; under
    systemd they are the unit's properties)."""


class SupervisorError(Exception):
    """A service could not be started or stopped; the message is written for the user."""


class Supervisor(Protocol):
    kind: str  # "systemd" or "detached", for ws doctor and logs

    def start(self, spec: ServiceSpec) -> int:
        """Start the service and return its main pid; a service of that name that still runs is an error."""
        ...

    def stop(self, name: str, timeout: float | None = None) -> bool:
        """Send the stop signal, wait up to ``timeout`` (default: the spec's), then kill.

        True if something was running; stopping an absent service succeeds (False).
        """
        ...

    def status(self, name: str) -> ServiceStatus: ...

    def logs(self, name: str, lines: int | None = None) -> str:
        """The service's output (the last ``lines`` lines), from its log file or the journal."""
        ...


def supervisor_for(state_dir: Path) -> Supervisor:
    """The systemd supervisor where systemd runs the host and its bus answers, else the detached-process one.

    ``WS_SUPERVISOR=detached`` forces the detached one (a host whose systemd should not run ws's services).
    """
    if uses_systemd():
        from ws.supervise.systemd import SystemdSupervisor

        return SystemdSupervisor()
    from ws.supervise.detached import DetachedSupervisor

    return DetachedSupervisor(state_dir / "run")


def uses_systemd() -> bool:
    """Whether services run as systemd units here (``WS_SUPERVISOR=detached`` forces the detached supervisor)."""
    import os

    return os.environ.get("WS_SUPERVISOR") != "detached" and _systemd_available()


@functools.cache
def _systemd_available() -> bool:
    """Asked once per process: a command asks for its supervisor several times, the host does not change."""
    from ws import systemd

    return systemd.systemd_is_init() and systemd.bus_answers()
