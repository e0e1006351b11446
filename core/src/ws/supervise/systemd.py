"""The supervisor where systemd is PID 1: one transient ``<name>.service`` per service, driven over D-Bus.

systemd keeps the process, its cgroup limits, watchdog and output (the journal); ``status`` asks systemd each
time. The log file of the spec is not used here: ``logs`` reads the unit's journal.
"""

from __future__ import annotations

import subprocess
import time

from ws import systemd
from ws.supervise import ServiceSpec, ServiceStatus, SupervisorError

POLL = 0.05
KILL_WAIT = 10.0
UNBOUNDED_STOP = 600.0


def unit_name(name: str) -> str:
    return f"{name}.service"


class SystemdSupervisor:
    kind = "systemd"

    def start(self, spec: ServiceSpec) -> int:
        unit = unit_name(spec.name)
        current = self.status(spec.name)
        if current.running:
            raise SupervisorError(f"service {spec.name} is already running (pid {current.pid})")
        systemd.reset_failed_unit(unit)
        try:
            systemd.start_transient_service(
                unit,
                list(spec.argv),
                description=f"ws: {spec.name}",
                environment=spec.environment,
                service_type="notify" if spec.notify else "exec",
                kill_signal=spec.stop_signal,
                stop_timeout=spec.stop_timeout,
                cpus=spec.cpus,
                memory_mib=spec.memory_mib,
                watchdog_sec=spec.watchdog_sec,
                start_timeout=spec.start_timeout,
                restart_sec=spec.restart_sec,
            )
        except systemd.BusError as error:
            raise SupervisorError(f"cannot start {spec.name}: {error}") from None
        state = self._wait_started(unit)
        if state is None or state.main_pid is None:
            raise SupervisorError(f"{spec.name} exited at once; see: journalctl -u {unit}")
        return state.main_pid

    def stop(self, name: str, timeout: float | None = None) -> bool:
        unit = unit_name(name)
        state = systemd.unit_state(unit)
        if state is None or state.active_state in ("inactive", "failed"):
            systemd.reset_failed_unit(unit)
            return False
        systemd.stop_unit(unit)
        # Without a timeout systemd's own (the spec's stop_timeout) ends in SIGKILL; the bound is a safety net.
        if not self._wait_stopped(unit, timeout if timeout is not None else UNBOUNDED_STOP):
            systemd.kill_unit(unit, 9)
            if not self._wait_stopped(unit, KILL_WAIT):
                raise SupervisorError(f"service {name} ({unit}) did not stop")
        systemd.reset_failed_unit(unit)
        return True

    def status(self, name: str) -> ServiceStatus:
        state = systemd.unit_state(unit_name(name))
        if state is None or state.active_state not in ("active", "activating", "reloading") or not state.main_pid:
            return ServiceStatus(running=False)
        return ServiceStatus(running=True, pid=state.main_pid, started_at=state.started_at)

    def logs(self, name: str, lines: int | None = None) -> str:
        command = ["journalctl", "--no-pager", "--output=cat", f"--unit={unit_name(name)}"]
        if lines is not None:
            command.append(f"--lines={lines}")
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout

    @staticmethod
    def _wait_started(unit: str, timeout: float = 30.0) -> systemd.UnitState | None:
        """The unit once it is past ``activating`` with a main pid (or gone, or failed)."""
        deadline = time.monotonic() + timeout
        while True:
            state = systemd.unit_state(unit)
            if state is None or state.active_state != "activating" or time.monotonic() > deadline:
                return state if state is not None and state.active_state in ("active", "activating") else None
            time.sleep(POLL)

    @staticmethod
    def _wait_stopped(unit: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            state = systemd.unit_state(unit)
            if state is None or state.active_state in ("inactive", "failed"):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL)
