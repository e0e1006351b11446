"""``ws vpn run``: the long-running VPN agent.

Each round it repairs the topology (a deleted namespace, ``piaw``, a flushed host ruleset come back), checks
the WireGuard handshake (older than ``handshake_timeout`` on ``health_failures`` consecutive checks: reconnect
with a new key, possibly another server) and, when due, renews the session and binds the forwarded port again
(:func:`ws_plugin_pia.network.converge`). Failures back off in steps (5 s ... 5 min); the last error is kept in
``agent.json`` for ``ws vpn status``. Under systemd (``NOTIFY_SOCKET`` set) it reports ``READY=1`` after the
first round (connected or not: a failed connect is retried with back-off, and the unit stays up so that
``ws vpn status`` can say why) and ``WATCHDOG=1`` after every round and, while it waits for the next one (up to
5 min of back-off), every half of the watchdog interval systemd gives it (``WATCHDOG_USEC``): a hung round
still goes unpinged and gets the agent restarted, a long wait does not.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ws_plugin_pia import netns, network, topology, tunnel
from ws_plugin_pia.store import write_json

if TYPE_CHECKING:
    from ws_plugin_pia.settings import PiaSettings
    from ws_plugin_pia.store import PiaPaths

BACKOFF_STEPS = (5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def notify(message: str) -> None:
    """sd_notify without libsystemd: one datagram to ``$NOTIFY_SOCKET`` (abstract when it starts with @)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


def watchdog_interval() -> float | None:
    """Half the watchdog interval systemd set for this process (``WATCHDOG_USEC``, ``WATCHDOG_PID``), or None."""
    usec, pid = os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


class Agent:
    def __init__(self, settings: PiaSettings, paths: PiaPaths, target_ip: str | None, log) -> None:
        self.settings, self.paths, self.target_ip, self.log = settings, paths, target_ip, log
        self.layout = network.layout_of(settings)
        self.stop = threading.Event()
        self.stale_checks = 0
        self.failures = 0
        self.next_due = 0.0
        self.ready = False
        self.connected = False
        self.last_error: str | None = None
        self.last_error_at: str | None = None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        self.report("starting")
        while not self.stop.is_set():
            try:
                self.round()
                self.failures = 0
                wait = self.settings.health_interval
            except Exception as exc:  # every failure is reported and retried, never fatal
                self.failures += 1
                wait = BACKOFF_STEPS[min(self.failures, len(BACKOFF_STEPS)) - 1]
                self.last_error = str(exc) or type(exc).__name__
                self.last_error_at = datetime.now(UTC).isoformat(timespec="seconds")
                self.log.warning("vpn agent round failed", error=self.last_error, retry_in=wait)
                self.report("failing", retry_in=wait)
            if not self.ready:  # the loop runs: a failed first round is retried, not a failed start
                notify("READY=1")
                self.ready = True
            self.wait(wait)
        notify("STOPPING=1")
        self.report("stopped")
        return 0

    def wait(self, seconds: float) -> None:
        """Until the next round (or SIGTERM), pinging the watchdog now and every half interval meanwhile."""
        ping = watchdog_interval()
        deadline = time.monotonic() + seconds
        while True:
            notify("WATCHDOG=1")
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.stop.wait(remaining if ping is None else min(remaining, ping)):
                return

    def round(self) -> None:
        changes = topology.ensure_host(self.layout, self.paths.state_dir)
        changes += topology.ensure_endpoint(self.layout)
        health = self.check()
        reconnect = self.stale_checks >= self.settings.health_failures
        if reconnect or not health.present or time.time() >= self.next_due:
            result = network.converge(self.settings, self.paths, self.target_ip, force=reconnect)
            changes += result.changes
            self.next_due = result.renewal.next_due.timestamp()
            self.stale_checks = 0
            self.log.info("vpn session", action="reconnected" if reconnect else result.renewal.action,
                          detail=result.renewal.detail)  # fmt: skip
        else:  # the tunnel's configuration is repaired every round (a piaw deleted under us comes back)
            changes += network.converge_tunnel(self.settings, self.paths, self.target_ip)
        for change in changes:
            self.log.info("vpn change", change=change)
        self.connected = True
        self.report("connected", changes=len(changes))

    def check(self) -> tunnel.Health:
        """One health check: count consecutive checks whose handshake is missing or too old."""
        if not netns.exists(self.layout.namespace):
            return tunnel.Health(present=False, handshake_age=None)
        with netns.InNetns(self.layout.namespace) as inside:
            health = tunnel.health(self.layout, inside)
        if health.present and self.connected:
            age = health.handshake_age
            self.stale_checks = self.stale_checks + 1 if age is None or age > self.settings.handshake_timeout else 0
        self.health = health
        return health

    def report(self, state: str, **extra: object) -> None:
        health = getattr(self, "health", None)
        write_json(
            self.paths.agent,
            {
                "pid": os.getpid(),
                "state": state,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "last_error": self.last_error,
                "last_error_at": self.last_error_at,
                "handshake_age": None if health is None else health.handshake_age,
                "stale_checks": self.stale_checks,
                "next_due": datetime.fromtimestamp(self.next_due, UTC).isoformat() if self.next_due else None,
                **extra,
            },
        )
