"""``ws network guard``: puts ws's firewall back within a second of anyone removing or changing it.

A flush of the whole ruleset (``systemctl reload nftables`` on Debian) removes ws's tables while guests
stay attached. The guard runs under core's process supervisor for as long as the network is up, follows
``nft monitor`` (it prints every committed change, whoever made it) and, after each burst of output,
compares ws's tables with the fingerprint recorded when ws applied them; when they differ it applies the
recorded script again. It also follows the kernel's link events so that a port joining the bridge is
isolated at once, whichever backend plugged it in. It never reads the configuration: what to apply is
what ``ws network up`` last applied (``ruleset.nft`` and ``applied.json`` in the network's folder).

It takes the network's lock before changing anything, so it never races ``ws network up`` writing a new
rule set.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
from pathlib import Path

from ws.errors import WsError
from ws.network import firewall

RULESET = "ruleset.nft"
RECORD = "applied.json"
SERVICE_PREFIX = "ws-guard-"
_RTMGRP_LINK = 0x1


def service_name(bridge: str) -> str:
    return f"{SERVICE_PREFIX}{bridge}"


def argv(state_dir: Path, bridge: str) -> list[str]:
    """How the supervisor runs the guard: this interpreter, so the same ws is used without PATH."""
    return [sys.executable, "-m", "ws", "network", "guard", "--state-dir", str(state_dir), "--bridge", bridge]


def restore(state_dir: Path, directory: Path, bridge: str) -> list[str]:
    """Re-apply the recorded tables if nft's listing differs from the record; return what was done."""
    from ws import locking

    with locking.lock(state_dir, "network", bridge):
        try:
            record = json.loads((directory / RECORD).read_text())
            script = (directory / RULESET).read_text()
        except (OSError, ValueError):
            return []  # the network is being taken down (or was never up): nothing to hold
        table = firewall.table_for(bridge)
        listing = firewall.listing(table)
        if listing is not None and firewall.fingerprint(listing) == record.get("listing"):
            return []
        firewall.apply(script)
        return [f"re-applied nftables tables {table} ({'missing' if listing is None else 'changed'})"]


def isolate(record_dir: Path, bridge: str) -> list[str]:
    """Isolate every port of the bridge when the record says workspaces must not reach each other."""
    from pyroute2 import IPRoute

    from ws.network import failsafe

    try:
        record = json.loads((record_dir / RECORD).read_text())
    except (OSError, ValueError):
        return []
    if record.get("guest_to_guest", False):
        return []
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=bridge)
        return failsafe.isolate_ports(ipr, found[0]) if found else []


def run(state_dir: Path, bridge: str) -> None:
    """The guard's loop; returns only when ``nft monitor`` ends."""
    directory = state_dir / "network" / bridge
    monitor = subprocess.Popen([firewall.NFT, "monitor"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    links = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    links.bind((0, _RTMGRP_LINK))
    selector = selectors.DefaultSelector()
    assert monitor.stdout is not None
    selector.register(monitor.stdout, selectors.EVENT_READ, "nft")
    selector.register(links, selectors.EVENT_READ, "link")
    _report(restore(state_dir, directory, bridge) + isolate(directory, bridge))
    try:
        while True:
            for key, _ in selector.select():
                if key.data == "link":
                    links.recv(65536)
                    _report(isolate(directory, bridge))
                    continue
                if not os.read(monitor.stdout.fileno(), 65536):  # any output: some ruleset changed
                    return
                _report(restore(state_dir, directory, bridge))
    finally:
        monitor.terminate()
        links.close()


def _report(changes: list[str]) -> None:
    for change in changes:
        print(change, flush=True)


def main(state_dir: Path, bridge: str) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the supervisor's stop: end nft monitor too
    try:
        run(state_dir, bridge)
    except WsError as exc:
        print(f"ws network guard: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
