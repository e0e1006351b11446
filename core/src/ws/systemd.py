"""systemd over its D-Bus API (dbus-fast): transient units, unit files (reload, enable, start) and machined,
as small synchronous functions.

Used by the systemd supervisor (``ws.supervise.systemd``) and by backends that ask machined about their
containers. dbus-fast is asynchronous and costs an import, so it is imported inside the functions and each call
runs its own short event loop and bus connection (calls come from ``ws`` commands, a few per operation, possibly
from several threads at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

SYSTEMD = "org.freedesktop.systemd1"
SYSTEMD_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
MACHINED = "org.freedesktop.machine1"
MACHINED_PATH = "/org/freedesktop/machine1"
MACHINE_MANAGER = "org.freedesktop.machine1.Manager"
PROPERTIES = "org.freedesktop.DBus.Properties"
USEC = 1_000_000


class BusError(Exception):
    """A D-Bus call failed; ``name`` is the D-Bus error name (``org.freedesktop.systemd1.NoSuchUnit``...)."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{message} ({name})" if message else name)
        self.name = name


@dataclass(frozen=True)
class UnitState:
    active_state: str  # active, activating, deactivating, inactive, failed
    sub_state: str
    main_pid: int | None
    started_at: float | None  # seconds since the epoch
    has_job: bool = False  # a start, stop or reload job is queued or running


@dataclass(frozen=True)
class Machine:
    name: str
    machine_class: str
    service: str
    unit: str | None = None
    leader: int | None = None
    state: str | None = None


def systemd_is_init() -> bool:
    """True where systemd runs the host (the check sd_booted() makes)."""
    return Path("/run/systemd/system").is_dir()


def bus_answers(timeout: float = 10.0) -> bool:
    """True if the system bus is reachable and systemd answers on it."""
    try:
        _run(_call(SYSTEMD, SYSTEMD_PATH, PROPERTIES, "Get", "ss", [MANAGER, "Version"]), timeout)
    except (BusError, OSError, TimeoutError, EOFError):
        return False
    return True


def systemd_version() -> str:
    return _run(_call(SYSTEMD, SYSTEMD_PATH, PROPERTIES, "Get", "ss", [MANAGER, "Version"]))[0].value


def major_version() -> int:
    """systemd's release number (``252`` of ``252.30-1~deb12u2``), 0 if it cannot be read."""
    head = systemd_version().split(".")[0].split("~")[0]
    return int(head) if head.isdigit() else 0


BACKOFF_VERSION = 254
"""The first systemd with RestartSteps= and RestartMaxDelaySec= (increasing restart delays)."""


def start_transient_service(
    name: str,
    argv: list[str],
    *,
    description: str,
    environment: dict[str, str] | None = None,
    service_type: str = "exec",
    kill_signal: int = 15,
    stop_timeout: float = 30.0,
    cpus: float | None = None,
    memory_mib: int | None = None,
    watchdog_sec: float | None = None,
    start_timeout: float | None = None,
    restart_sec: float | None = None,
    delegate: bool = True,
) -> None:
    """``StartTransientUnit`` of ``name`` (``*.service``): output to the journal, collected once it stops.

    ``KillMode=mixed``: the stop signal goes to the main process (nspawn shuts its container down cleanly),
    SIGKILL to the whole cgroup after ``stop_timeout``. ``Delegate``: the service may manage its own cgroup
    subtree, which nspawn needs for the container's payload. ``restart_sec``: restarted whenever it exits
    (never given up), the delay growing in steps to 5 min where systemd supports it.
    """
    from dbus_fast import Variant

    properties: list[Any] = [
        ["Description", Variant("s", description)],
        ["ExecStart", Variant("a(sasb)", [[argv[0], list(argv), False]])],
        ["Type", Variant("s", service_type)],
        ["KillMode", Variant("s", "mixed")],
        ["KillSignal", Variant("i", int(kill_signal))],
        ["TimeoutStopUSec", Variant("t", int(stop_timeout * USEC))],
        ["CollectMode", Variant("s", "inactive-or-failed")],
        ["StandardOutput", Variant("s", "journal")],
        ["StandardError", Variant("s", "journal")],
        ["Delegate", Variant("b", delegate)],
    ]
    if environment:
        properties.append(["Environment", Variant("as", [f"{key}={value}" for key, value in environment.items()])])
    if cpus is not None:
        properties.append(["CPUQuotaPerSecUSec", Variant("t", int(cpus * USEC))])
    if memory_mib is not None:
        properties.append(["MemoryMax", Variant("t", memory_mib * 1024 * 1024)])
    if watchdog_sec is not None:
        properties.append(["WatchdogUSec", Variant("t", int(watchdog_sec * USEC))])
    if start_timeout is not None:  # how long a Type=notify service may take to send READY=1
        properties.append(["TimeoutStartUSec", Variant("t", int(start_timeout * USEC))])
    if restart_sec is not None:
        properties += [
            ["Restart", Variant("s", "always")],
            ["RestartUSec", Variant("t", int(restart_sec * USEC))],
            ["StartLimitIntervalUSec", Variant("t", 0)],
        ]
        if major_version() >= BACKOFF_VERSION:
            properties += [["RestartSteps", Variant("u", 8)], ["RestartMaxDelayUSec", Variant("t", 300 * USEC)]]
    _run(
        _call(SYSTEMD, SYSTEMD_PATH, MANAGER, "StartTransientUnit", "ssa(sv)a(sa(sv))", [name, "fail", properties, []])
    )


def stop_unit(name: str) -> bool:
    """Ask systemd to stop the unit; False if it is not loaded. Returns once the stop job is queued."""
    try:
        _run(_call(SYSTEMD, SYSTEMD_PATH, MANAGER, "StopUnit", "ss", [name, "replace"]))
    except BusError as error:
        if error.name == "org.freedesktop.systemd1.NoSuchUnit":
            return False
        raise
    return True


def start_unit(name: str) -> None:
    """Queue a start job for the unit (with its dependencies, in their order); returns at once."""
    _run(_call(SYSTEMD, SYSTEMD_PATH, MANAGER, "StartUnit", "ss", [name, "replace"]))


def daemon_reload() -> None:
    """``systemctl daemon-reload``: systemd reads the unit files again. Returns once systemd has reloaded
    (the reply comes after the reload)."""
    _run(_call(SYSTEMD, SYSTEMD_PATH, MANAGER, "Reload", "", []), timeout=120.0)


def enable_unit_files(names: list[str]) -> None:
    """``systemctl enable``: the symlinks of each unit's [Install] section (replacing conflicting ones)."""
    _run(_call(SYSTEMD, SYSTEMD_PATH, MANAGER, "EnableUnitFiles", "asbb", [list(names), False, True]))


def disable_unit_files(names: list[str]) -> None:
    """``systemctl disable``: removes the unit's symlinks (a unit file that is already gone is fine)."""
    _run(_call(SYSTEMD, SYSTEMD_PATH, MANAGER, "DisableUnitFiles", "asb", [list(names), False]))


def unit_file_state(name: str) -> str:
    """``enabled``, ``disabled``, ``static``, ...; ``not-found`` when systemd has no such unit file."""
    try:
        return _run(_call(SYSTEMD, SYSTEMD_PATH, MANAGER, "GetUnitFileState", "s", [name]))[0]
    except BusError as error:
        if error.name in ("org.freedesktop.DBus.Error.FileNotFound", "org.freedesktop.systemd1.NoSuchUnit"):
            return "not-found"
        raise


def loaded_units(patterns: list[str]) -> list[str]:
    """Names of the units systemd has loaded that match the glob ``patterns`` (also those whose file is gone)."""
    (units,) = _run(_call(SYSTEMD, SYSTEMD_PATH, MANAGER, "ListUnitsByPatterns", "asas", [[], list(patterns)]))
    return sorted(unit[0] for unit in units)


def kill_unit(name: str, signal: int) -> None:
    """Signal every process of the unit; a unit that is gone meanwhile (stopped and collected) is fine."""
    try:
        _run(_call(SYSTEMD, SYSTEMD_PATH, MANAGER, "KillUnit", "ssi", [name, "all", int(signal)]))
    except BusError as error:
        if error.name != "org.freedesktop.systemd1.NoSuchUnit":
            raise


def reset_failed_unit(name: str) -> None:
    try:
        _run(_call(SYSTEMD, SYSTEMD_PATH, MANAGER, "ResetFailedUnit", "s", [name]))
    except BusError as error:
        if error.name != "org.freedesktop.systemd1.NoSuchUnit":
            raise


def unit_state(name: str) -> UnitState | None:
    """The unit's state from systemd now; None if systemd has no such unit loaded."""
    return _run(_unit_state(name))


async def _unit_state(name: str) -> UnitState | None:
    try:
        (path,) = await _call(SYSTEMD, SYSTEMD_PATH, MANAGER, "GetUnit", "s", [name])
    except BusError as error:
        if error.name == "org.freedesktop.systemd1.NoSuchUnit":
            return None
        raise
    (unit,) = await _call(SYSTEMD, path, PROPERTIES, "GetAll", "s", ["org.freedesktop.systemd1.Unit"])
    main_pid, started = None, None
    if name.endswith(".service"):
        (service,) = await _call(SYSTEMD, path, PROPERTIES, "GetAll", "s", ["org.freedesktop.systemd1.Service"])
        main_pid = service["MainPID"].value or None
        started = service["ExecMainStartTimestamp"].value / USEC or None
    job_id = unit["Job"].value[0] if "Job" in unit else 0
    return UnitState(unit["ActiveState"].value, unit["SubState"].value, main_pid, started, bool(job_id))


def get_machine(name: str) -> Machine | None:
    """machined's record of a registered machine (container or VM); None if it has none."""
    return _run(_get_machine(name))


async def _get_machine(name: str) -> Machine | None:
    try:
        (path,) = await _call(MACHINED, MACHINED_PATH, MACHINE_MANAGER, "GetMachine", "s", [name])
    except BusError as error:
        if error.name in ("org.freedesktop.machine1.NoSuchMachine", "org.freedesktop.DBus.Error.ServiceUnknown"):
            return None
        raise
    try:
        (props,) = await _call(MACHINED, path, PROPERTIES, "GetAll", "s", ["org.freedesktop.machine1.Machine"])
    except BusError as error:
        if error.name == "org.freedesktop.DBus.Error.UnknownObject":
            return None  # the machine ended between the two calls: machined dropped its object
        raise
    return Machine(
        name=props["Name"].value,
        machine_class=props["Class"].value,
        service=props["Service"].value,
        unit=props["Unit"].value or None,
        leader=props["Leader"].value or None,
        state=props["State"].value or None,
    )


def list_machines() -> list[Machine]:
    (machines,) = _run(_call(MACHINED, MACHINED_PATH, MACHINE_MANAGER, "ListMachines", "", []))
    return [Machine(name=name, machine_class=kind, service=service) for name, kind, service, _path in machines]


def terminate_machine(name: str) -> bool:
    """Kill every process of the machine; False if machined does not know it."""
    try:
        _run(_call(MACHINED, MACHINED_PATH, MACHINE_MANAGER, "TerminateMachine", "s", [name]))
    except BusError as error:
        if error.name == "org.freedesktop.machine1.NoSuchMachine":
            return False
        raise
    return True


def _run(coroutine, timeout: float = 30.0):
    import asyncio  # here, not above: hosts without systemd only ask systemd_is_init(), asyncio costs 20 ms

    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def _call(destination: str, path: str, interface: str, member: str, signature: str, body: list):
    from dbus_fast import BusType, Message, MessageType
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_type=BusType.SYSTEM, negotiate_unix_fd=False).connect()
    try:
        reply = await bus.call(
            Message(
                destination=destination,
                path=path,
                interface=interface,
                member=member,
                signature=signature,
                body=body,
            )
        )
    finally:
        bus.disconnect()
    if reply.message_type == MessageType.ERROR:
        raise BusError(reply.error_name or "", reply.body[0] if reply.body else "")
    return reply.body
