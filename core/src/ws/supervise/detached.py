"""The supervisor for hosts without systemd as PID 1: detached processes with pid files that know start times.

``<run_dir>/<name>.json`` records the service's pid, process group, start time (clock ticks since boot, from
/proc), wall-clock start, log file and stop signal. A pid alone is not trusted: the process must still have the
recorded start time, so a pid reused by an unrelated process is never reported running nor signalled. Stopping
keeps the record (without the pid) so ``logs`` still finds the last run's output.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

from ws.supervise import ServiceSpec, ServiceStatus, SupervisorError, cgroups
from ws.supervise.launch import Launch, LaunchError, launch
from ws.supervise.procfs import is_same_process, open_pidfd, signal_pidfd, wait_pidfd

CHILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KILL_WAIT = 10.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


class DetachedSupervisor:
    kind = "detached"

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def start(self, spec: ServiceSpec) -> int:
        record_file = self._record_file(spec.name)
        current = self.status(spec.name)
        if current.running:
            raise SupervisorError(f"service {spec.name} is already running (pid {current.pid})")
        if (record := self._read(spec.name)) is not None:
            self._clean_cgroups(record)  # what a killed earlier run of the service left
        environment = {"PATH": CHILD_PATH, **spec.environment}
        program = shutil.which(spec.argv[0], path=environment["PATH"])
        if program is None:
            raise SupervisorError(f"cannot start {spec.name}: {spec.argv[0]} not found")
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        folders, limits = cgroups.create(spec.name, spec.cpus, spec.memory_mib)
        record = {
            "name": spec.name,
            "log_file": str(spec.log_file),
            "stop_signal": int(spec.stop_signal),
            "stop_timeout": spec.stop_timeout,
            "started_at": time.time(),
            "limits": limits,
            "cgroups": [str(path) for path in folders],
        }
        request = Launch(
            argv=[program, *spec.argv[1:]],
            environment=environment,
            log_file=str(spec.log_file),
            cgroups=record["cgroups"],
            record_file=str(record_file),
            record=record,
        )
        try:
            return launch(request)
        except LaunchError as exc:
            for cgroup in folders:
                cgroups.remove(cgroup)
            raise SupervisorError(f"cannot start {spec.name}: {exc}") from None

    def stop(self, name: str, timeout: float | None = None) -> bool:
        record = self._read(name)
        if record is None:
            return False
        stopped = False
        pidfd = open_pidfd(record["pid"], record["ticks"]) if "pid" in record else None
        if pidfd is not None:
            try:
                signal_pidfd(pidfd, record["stop_signal"])
                if not wait_pidfd(pidfd, record["stop_timeout"] if timeout is None else timeout):
                    self._kill(record, pidfd)
            finally:
                os.close(pidfd)
            stopped = True
        stopped = self._clean_cgroups(record) or stopped
        if "pid" in record:
            self._forget_process(name, record)
        return stopped

    def _kill(self, record: dict, pidfd: int) -> None:
        if is_same_process(record["pid"], record["ticks"]):
            # The group's leader runs, so the group id is still this service's: kill its helpers too.
            _kill_group(record["pgid"])
        for cgroup in record.get("cgroups", ()):
            cgroups.kill(Path(cgroup), KILL_WAIT)
        signal_pidfd(pidfd, signal.SIGKILL)
        if not wait_pidfd(pidfd, KILL_WAIT):
            raise SupervisorError(f"service {record['name']} (pid {record['pid']}) survived SIGKILL")

    @staticmethod
    def _clean_cgroups(record: dict) -> bool:
        """Kill what the service left in its cgroups (a child that outlived it) and remove them."""
        left = False
        for cgroup in map(Path, record.get("cgroups", ())):
            if cgroups.has_processes(cgroup):
                left = True
                cgroups.kill(cgroup, KILL_WAIT)
            cgroups.remove(cgroup)
        return left

    def status(self, name: str) -> ServiceStatus:
        record = self._read(name)
        if record is None or "pid" not in record or not is_same_process(record["pid"], record["ticks"]):
            return ServiceStatus(running=False)
        limits = tuple(record.get("limits", ()))
        return ServiceStatus(running=True, pid=record["pid"], started_at=record.get("started_at"), limits=limits)

    def logs(self, name: str, lines: int | None = None) -> str:
        record = self._read(name)
        if record is None:
            return ""
        try:
            text = Path(record["log_file"]).read_text(errors="replace")
        except FileNotFoundError:
            return ""
        if lines is None:
            return text
        return "".join(text.splitlines(keepends=True)[-lines:]) if lines > 0 else ""

    def _record_file(self, name: str) -> Path:
        if not _NAME.match(name):
            raise SupervisorError(f"invalid service name {name!r}")
        return self.run_dir / f"{name}.json"

    def _read(self, name: str) -> dict | None:
        try:
            return json.loads(self._record_file(name).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _forget_process(self, name: str, record: dict) -> None:
        """Keep what ``logs`` needs, drop the pid: the record no longer describes a process."""
        from ws.state import atomic_write

        kept = {key: value for key, value in record.items() if key not in ("pid", "pgid", "ticks")}
        atomic_write(self._record_file(name), json.dumps(kept).encode(), 0o600)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
