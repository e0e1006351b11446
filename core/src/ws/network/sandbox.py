"""The ``sandbox`` network as a whole: bring it up, check it, take it down.

``ensure_up`` is called on every ``ws up`` (through core's ``ws_network_attach``), so when everything is
already in place it only reads: sysfs and ioctls for the bridge, one ``nft list table`` compared with the
fingerprint recorded when ws last applied the table, /proc for the forwarder. Anything missing or
different (after a crash, a manual change or a configuration change) sends it down the converge path,
which repairs just what differs.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ws.errors import WsError
from ws.network import bridge, dns, failsafe, firewall, guard, hostfiles
from ws.state import atomic_write
from ws.types import NetworkAttachment

NETWORK_NAME = "sandbox"
RECORD = guard.RECORD
RULESET = guard.RULESET
FORWARDING_MARK = "forwarding-was-off"
GUARD_LOG = "guard.log"


@dataclass(frozen=True)
class UpResult:
    """What ``ensure_up`` changed; empty when the network already was up as configured."""

    changes: tuple[str, ...]

    @property
    def already_up(self) -> bool:
        return not self.changes


def network_dir(network, state_dir: Path) -> Path:
    """ws's files for this bridge: ``<state_dir>/network/<bridge>/``."""
    return state_dir / "network" / network.bridge


def attachment(network) -> NetworkAttachment:
    """Where a workspace on the sandbox network plugs in: gateway and DNS are the host's bridge address."""
    gateway = str(network.gateway)
    return NetworkAttachment(
        network=NETWORK_NAME,
        bridge=network.bridge,
        gateway=gateway,
        dns=(gateway,),
        prefixlen=network.subnet.prefixlen,
    )


def _interface(network) -> ipaddress.IPv4Interface:
    return ipaddress.IPv4Interface(f"{network.gateway}/{network.subnet.prefixlen}")


def port_bindings(workspaces: Iterable) -> tuple[firewall.PortBinding, ...]:
    """The bridge port, MAC and address of every configured workspace on the sandbox network."""
    return tuple(
        firewall.PortBinding(w.host_interface, w.mac, ipaddress.IPv4Address(w.ip))
        for w in sorted(workspaces, key=lambda w: w.name)
        if w.network == NETWORK_NAME
    )


def _firewall_spec(network, ports: tuple[firewall.PortBinding, ...]) -> firewall.FirewallSpec:
    return firewall.FirewallSpec(
        bridge=network.bridge,
        subnet=network.subnet,
        host_address=network.gateway,
        upstream=network.upstream or bridge.default_route_interface(),
        block_lan=network.block_lan,
        ports=ports,
        guest_to_guest=network.guest_to_guest,
    )


def guard_running(network, state_dir: Path) -> bool:
    """Whether the supervised ``ws network guard`` of this bridge runs (read from its process record)."""
    from ws.supervise import supervisor_for

    return supervisor_for(state_dir).status(guard.service_name(network.bridge)).running


def _start_guard(network, state_dir: Path) -> list[str]:
    from ws.supervise import ServiceSpec, supervisor_for

    if guard_running(network, state_dir):
        return []
    spec = ServiceSpec(
        name=guard.service_name(network.bridge),
        argv=guard.argv(state_dir, network.bridge),
        log_file=network_dir(network, state_dir) / GUARD_LOG,
        stop_timeout=5,
    )
    pid = supervisor_for(state_dir).start(spec)
    return [f"started the firewall guard (pid {pid})"]


def _stop_guard(network, state_dir: Path) -> list[str]:
    from ws.supervise import supervisor_for

    stopped = supervisor_for(state_dir).stop(guard.service_name(network.bridge))
    return ["stopped the firewall guard"] if stopped else []


def _forwarder(network, state_dir: Path) -> dns.Forwarder:
    servers = tuple(network.dns_upstream) if network.dns_upstream else None
    return dns.Forwarder(listen=network.gateway, servers=servers, directory=network_dir(network, state_dir))


def _read_record(directory: Path) -> dict:
    try:
        return json.loads((directory / RECORD).read_text())
    except (OSError, ValueError):
        return {}


def _table_current(spec: firewall.FirewallSpec, record: dict) -> bool:
    """Our table exists and is byte for byte what ws applied for this exact configuration."""
    if record.get("ruleset") != firewall.fingerprint(firewall.render(spec)):
        return False
    text = firewall.listing(spec.table)
    return text is not None and firewall.fingerprint(text) == record.get("listing")


def is_up(network, state_dir: Path, ports: tuple[firewall.PortBinding, ...] = ()) -> bool:
    """Cheap read-only check that everything ``ensure_up`` creates is in place as configured."""
    spec = _firewall_spec(network, ports)
    return (
        bridge.probe(network.bridge, _interface(network), state_dir)
        and bridge.forwarding_enabled()
        and dns.is_current(_forwarder(network, state_dir))
        and _table_current(spec, _read_record(network_dir(network, state_dir)))
        and guard_running(network, state_dir)
    )


def ensure_up(
    network,
    state_dir: Path,
    log,
    nm_dir: Path = hostfiles.NETWORKMANAGER,
    unmanaged: Iterable[str] = (),
    ports: tuple[firewall.PortBinding, ...] = (),
) -> UpResult:
    """Bring the sandbox network up, or repair what differs; idempotent and safe after a crash.

    ``unmanaged`` are interface-name patterns (the backends' host interfaces) NetworkManager must leave alone;
    ``ports`` the configured workspaces' bridge ports (see :func:`port_bindings`). The caller holds the
    network's lock (the guard takes it too). A bridge of the same name that another configuration (another
    state directory) brought up is refused before anything is changed.
    """
    bridge.check_owner(network.bridge, state_dir)
    changes = hostfiles.sync_networkmanager(network.bridge, nm_dir, unmanaged)
    if not changes and is_up(network, state_dir, ports):
        log.debug("network already up", bridge=network.bridge)
        return UpResult(())
    bridge_changes = bridge.ensure(network.bridge, _interface(network), state_dir)  # may refuse: nothing made yet
    changes += bridge_changes
    directory = network_dir(network, state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    spec = _firewall_spec(network, ports)
    record = _read_record(directory)
    if not _table_current(spec, record):
        script = firewall.render(spec)
        firewall.apply(script)
        record = {
            "ruleset": firewall.fingerprint(script),
            "listing": firewall.fingerprint(firewall.listing(spec.table) or ""),
            "upstream": spec.upstream,
            "guest_to_guest": spec.guest_to_guest,
        }
        atomic_write(directory / RULESET, script.encode(), mode=0o600)
        atomic_write(directory / RECORD, json.dumps(record, indent=2).encode(), mode=0o644)
        changes.append(f"applied nftables tables {spec.table} (masquerade out of {spec.upstream})")
    ranges = failsafe.blocked_ranges(spec.subnet, firewall.LAN_V4, spec.block_lan, spec.guest_to_guest)
    neighbours = {str(port.ip): port.mac for port in spec.ports}
    changes += failsafe.ensure(network.bridge, ranges, not spec.guest_to_guest, neighbours)
    changes += _start_guard(network, state_dir)
    if not bridge.forwarding_enabled():  # only once the firewall and its fail-safes are in place
        (directory / FORWARDING_MARK).write_text("ws turned IPv4 forwarding on; `ws network down` turns it off\n")
        bridge.set_forwarding(True)
        changes.append("enabled IPv4 forwarding")
    changes += dns.ensure(_forwarder(network, state_dir), restart=bool(bridge_changes))
    for change in changes:
        log.info("network change", bridge=network.bridge, change=change)
    return UpResult(tuple(changes))


def down(network, state_dir: Path, log, nm_dir: Path = hostfiles.NETWORKMANAGER) -> list[str]:
    """Remove exactly what ``ensure_up`` created; succeeds when nothing is up. Another configuration's
    bridge (and its firewall table, named after the bridge) is refused, not removed."""
    bridge.check_owner(network.bridge, state_dir, foreign_ok=True)
    directory = network_dir(network, state_dir)
    changes = _stop_guard(network, state_dir)
    changes += dns.stop(_forwarder(network, state_dir))
    table = firewall.table_for(network.bridge)
    try:  # the bridge first: guests lose their link before the firewall goes
        changes += bridge.remove(network.bridge)
    except WsError as exc:
        log.warning("bridge left in place", bridge=network.bridge, reason=str(exc))
    changes += firewall.remove(table)
    changes += failsafe.remove(network.bridge)
    mark = directory / FORWARDING_MARK
    if mark.exists():
        if not _other_ws_tables(table):
            bridge.set_forwarding(False)
            changes.append("disabled IPv4 forwarding (ws had turned it on)")
        mark.unlink()
    changes += hostfiles.remove_networkmanager(network.bridge, nm_dir)
    for name in (RECORD, RULESET, GUARD_LOG):
        if (directory / name).exists():
            (directory / name).unlink()
            changes.append(f"removed {directory / name}")
    for folder in (directory, directory.parent):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    for change in changes:
        log.info("network change", bridge=network.bridge, change=change)
    return changes


def _other_ws_tables(own: str) -> bool:
    """Whether another ws sandbox table (another configuration's bridge) still relies on forwarding."""
    return any(table.startswith("ws-") and table != own for table in firewall.table_names())


def status(network, state_dir: Path, ports: tuple[firewall.PortBinding, ...] = ()) -> dict:
    """Everything ``ws network status`` shows, read from the kernel and /proc (never from a cache)."""
    try:
        upstream, upstream_error = _firewall_spec(network, ports).upstream, None
    except WsError as exc:
        upstream, upstream_error = None, str(exc)
    table = firewall.table_for(network.bridge)
    listing = firewall.listing(table)
    fwd = _forwarder(network, state_dir)
    pid = dns.running_pid(fwd)
    record = _read_record(network_dir(network, state_dir))
    return {
        "up": upstream is not None and is_up(network, state_dir, ports),
        "bridge": bridge.inspect(network.bridge).as_dict(),
        "expected_address": str(_interface(network)),
        "forwarding": bridge.forwarding_enabled(),
        "firewall": {
            "table": f"inet {table}",
            "present": listing is not None,
            "rules": firewall.rule_count(table) if listing is not None else 0,
            "current": upstream is not None and _table_current(_firewall_spec(network, ports), record),
            "block_lan": network.block_lan,
            "guest_to_guest": network.guest_to_guest,
            "guard": guard_running(network, state_dir),
        },
        "dns": {
            "forwarder": "dnsmasq",
            "pid": pid,
            "running": pid is not None,
            "listen_address": str(network.gateway),
            "listening": dns.listening(network.gateway),
            "upstream_servers": dns.upstream_servers(fwd),
            "config_file": str(fwd.config_file),
        },
        "upstream": {
            "interface": upstream,
            "source": "config" if network.upstream else "default route",
            "error": upstream_error,
        },
    }
