"""A guest (container or VM) run as a supervised process: started, then awaited until its sshd answers.

Every backend whose guest is a process of the host (nspawn, qemu) starts it this way, so a start failure
and a guest that dies while booting read the same whichever backend it is.
"""

from __future__ import annotations

from collections.abc import Callable

from ws.errors import WsError
from ws.readiness import wait_for_ssh
from ws.supervise import ServiceSpec, Supervisor, SupervisorError


def start_guest(
    supervisor: Supervisor, spec: ServiceSpec, address: str, timeout: float, describe_failure: Callable[[], str]
) -> None:
    """Start ``spec`` and return once sshd answers on ``address``; a guest that exits first fails at once
    with ``describe_failure()`` (its last console lines)."""
    try:
        supervisor.start(spec)
    except SupervisorError as exc:
        raise WsError(str(exc)) from None
    wait_for_ssh(address, timeout, describe_failure, alive=lambda: supervisor.status(spec.name).running)
