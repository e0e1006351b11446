"""ws.systemd's machined queries when a machine ends between two bus calls (an in-process stand-in for the bus;
the real machined is exercised in tests/vm/test_supervise_systemd.py, where this race was seen)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from ws import systemd

PATH = "/org/freedesktop/machine1/machine/wstestm"


def _answering(get_all):
    """A stand-in for ``systemd._call``: GetMachine names the machine's object, GetAll is ``get_all``."""

    async def call(destination, path, interface, member, signature, body):
        if member == "GetMachine":
            return [PATH]
        assert (member, path) == ("GetAll", PATH)
        return get_all()

    return call


def _gone():
    raise systemd.BusError("org.freedesktop.DBus.Error.UnknownObject", f"Unknown object '{PATH}'.")


def test_a_machine_that_ended_after_it_was_looked_up_is_not_there(monkeypatch) -> None:
    monkeypatch.setattr(systemd, "_call", _answering(_gone))
    assert systemd.get_machine("wstestm") is None


def test_a_running_machine_is_read_from_its_object(monkeypatch) -> None:
    values = {"Name": "wstestm", "Class": "container", "Service": "systemd-nspawn", "Unit": "ws-test.service",
              "Leader": 42, "State": "running"}  # fmt: skip
    props = {key: SimpleNamespace(value=value) for key, value in values.items()}
    monkeypatch.setattr(systemd, "_call", _answering(lambda: [props]))
    machine = systemd.get_machine("wstestm")
    assert machine is not None
    assert (machine.name, machine.unit, machine.leader, machine.state) == ("wstestm", "ws-test.service", 42, "running")


def test_other_bus_errors_still_raise(monkeypatch) -> None:
    def denied():
        raise systemd.BusError("org.freedesktop.DBus.Error.AccessDenied", "no")

    monkeypatch.setattr(systemd, "_call", _answering(denied))
    with pytest.raises(systemd.BusError):
        systemd.get_machine("wstestm")
