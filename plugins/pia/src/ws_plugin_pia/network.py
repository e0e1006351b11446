"""The ``vpn`` network: its definition from ``[pia]``, bringing it up and down, and putting a PIA session into
service (``converge``), which the agent (:mod:`ws_plugin_pia.agent`) and ``ws vpn renew`` share.

Lifecycle: ``up`` makes the topology (:mod:`ws_plugin_pia.topology`); core then starts the agent the
record names (``ws vpn run NAME`` as ``ws-agent-NAME``, :mod:`ws.agents`), which connects and keeps the tunnel
healthy. Core stops the agent before ``down``, which removes the namespace, then the host side. Every step is
idempotent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ws.errors import WsError

from ws_plugin_pia import netns, rules, topology, tunnel
from ws_plugin_pia.store import PiaPaths, read_json, write_json

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ws.api import Context, Network

    from ws_plugin_pia.renewal import Renewal
    from ws_plugin_pia.session import Session
    from ws_plugin_pia.settings import PiaSettings

HOOK_TIMEOUT = 60.0
AGENT_WATCHDOG_SEC = 300
"""systemd restarts an agent silent this long. It pings at least every half of it, also while it waits between
rounds or backs off; one round (a reconnect against slow PIA servers, bindPort retries) must fit in it."""
AGENT_START_TIMEOUT = 600.0
"""The agent reports ready after its first round: a connect with slow PIA servers (or a slow machine) may take
minutes; ``ws network up`` waits at most 30 s of it, then the unit keeps starting."""


def layout_of(settings: PiaSettings) -> topology.Layout:
    return topology.Layout(
        bridge=settings.bridge,
        subnet=settings.subnet,
        host_address=settings.host_address,
        endpoint_address=settings.endpoint_address,
        namespace=settings.namespace,
        interface=settings.interface,
        mtu=settings.mtu,
    )


def define(name: str, core: Any, sections: Mapping[str, Any]) -> Network:
    """The network record, with its agent (``ws vpn run NAME``, which core starts after ``up`` and stops
    before ``down``); a forwarded-port target that is not a workspace on this network is an error."""
    from ws.api import Network, NetworkAgent

    settings = sections.get("pia")
    if settings is None or not settings.configured:
        raise ValueError("[pia] is not configured (username, password_file, ca_file; see docs/vpn.md)")
    target = settings.receive_forwarded_port
    if target is not None:
        spec = core.workspaces.get(target.workspace)
        if spec is None or spec.network != name:
            raise ValueError(
                f'pia.receive_forwarded_port.workspace {target.workspace!r} is not a workspace with network = "{name}"'
            )
    endpoint = str(settings.endpoint_address)
    agent = NetworkAgent(("vpn", "run", name), watchdog_sec=AGENT_WATCHDOG_SEC, start_timeout=AGENT_START_TIMEOUT)
    return Network(
        name=name,
        bridge=settings.bridge,
        subnet=str(settings.subnet),
        host_address=str(settings.host_address),
        gateway=endpoint,
        dns=(endpoint,),
        masquerade=False,
        mtu=settings.mtu,
        agent=agent,
    )


# --- putting a session into service ------------------------------------------------------------------------


@dataclass(frozen=True)
class Converged:
    renewal: Renewal
    changes: list[str]
    port: int | None


def converge(settings: PiaSettings, paths: PiaPaths, target_ip: str | None, force: bool = False) -> Converged:
    """Topology repaired, session renewed when due (or ``force``), tunnel configured in place, DNS forwarder
    on the endpoint, the forwarded port bound and DNATed, the hook run when the port changed."""
    from ws_plugin_pia import renewal

    layout = layout_of(settings)
    changes = topology.ensure_host(layout, paths.state_dir)
    changes += topology.ensure_endpoint(layout)
    with netns.InNetns(layout.namespace) as inside:
        result = renewal.renew(
            settings,
            paths,
            force,
            activate=lambda current: changes.extend(
                activate(layout, inside, paths, current, dnat_for(settings, forwarded_port(settings, paths), target_ip))
            ),
            in_tunnel=inside.call,
        )
        port = forwarded_port(settings, paths)
        changes += topology.apply_endpoint_rules(layout, inside, dnat_for(settings, port, target_ip))
    if port is not None and target_ip is not None:
        changes += run_port_hook(settings, paths, port, target_ip)
    return Converged(result, changes, port)


def converge_tunnel(settings: PiaSettings, paths: PiaPaths, target_ip: str | None) -> list[str]:
    """Between renewals: the stored session's tunnel, rules and DNS repaired (cheap when nothing differs)."""
    from ws_plugin_pia import session

    current = session.load(paths)
    if current is None:
        raise WsError("no PIA session is stored; the agent makes one at its next round")
    layout = layout_of(settings)
    with netns.InNetns(layout.namespace) as inside:
        dnat = dnat_for(settings, forwarded_port(settings, paths), target_ip)
        return activate(layout, inside, paths, current, dnat)


def activate(
    layout: topology.Layout, inside: netns.InNetns, paths: PiaPaths, current: Session, dnat: rules.Dnat | None
) -> list[str]:
    """The session in the tunnel (swapped in place on the same interface), the namespace's rules in place
    before its default route through the tunnel exists, DNS through the tunnel."""
    key = paths.private_key.read_text().strip()
    changes = tunnel.ensure_interface(layout)
    changes += topology.apply_endpoint_rules(layout, inside, dnat)
    changes += tunnel.configure(layout, inside, tunnel.config_for(current, key, layout.mtu))
    changes += ensure_dns(layout, inside, paths, current.dns_servers)
    return changes


def forwarded_port(settings: PiaSettings, paths: PiaPaths) -> int | None:
    from ws_plugin_pia import portforward

    return portforward.current_port(paths) if settings.port_forward else None


def dnat_for(settings: PiaSettings, port: int | None, target_ip: str | None) -> rules.Dnat | None:
    from ipaddress import IPv4Address

    target = settings.receive_forwarded_port
    if target is None or port is None or target_ip is None:
        return None
    protocols = ("tcp", "udp") if target.protocol == "both" else (target.protocol,)
    return rules.Dnat(port, IPv4Address(target_ip), target.port or port, protocols)


def ensure_dns(layout: topology.Layout, inside: netns.InNetns, paths: PiaPaths, servers: tuple[str, ...]) -> list[str]:
    """dnsmasq on the endpoint address inside the namespace, forwarding to the session's DNS servers (reached
    through the tunnel, the namespace's only route out). A dnsmasq left in an older namespace of that name
    (one deleted under it) is replaced."""
    from ipaddress import IPv4Address

    from ws.network import dns

    forwarder = dns.Forwarder(
        listen=layout.endpoint_address,
        servers=tuple(IPv4Address(server) for server in servers),
        directory=paths.root / "dns",
    )

    def ensure() -> list[str]:
        pid = dns.running_pid(forwarder)
        stale = pid is not None and os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat("/proc/thread-self/ns/net").st_ino
        return dns.ensure(forwarder, restart=stale)

    return [f"{layout.namespace}: {change}" for change in inside.call(ensure)]


def stop_dns(paths: PiaPaths, layout: topology.Layout) -> list[str]:
    from ws.network import dns

    forwarder = dns.Forwarder(listen=layout.endpoint_address, servers=None, directory=paths.root / "dns")
    return dns.stop(forwarder)


def run_port_hook(settings: PiaSettings, paths: PiaPaths, port: int, target_ip: str) -> list[str]:
    """``on_port_forwarded`` with PORT and TARGET_IP, once per (port, target) (remembered in hook.json)."""
    record = paths.root / "hook.json"
    wanted = {"port": port, "target_ip": target_ip}
    if settings.on_port_forwarded is None or read_json(record) == wanted:
        return []
    environment = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "PORT": str(port),
                   "TARGET_IP": target_ip}  # fmt: skip
    argv = settings.on_port_forwarded
    if shutil.which(argv[0]) is None:
        raise WsError(f"pia.on_port_forwarded: {argv[0]} not found")
    result = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=HOOK_TIMEOUT, check=False)
    if result.returncode != 0:
        raise WsError(f"pia.on_port_forwarded exited {result.returncode}: {result.stderr.strip()[-300:]}")
    write_json(record, wanted)
    return [f"ran on_port_forwarded (PORT={port}, TARGET_IP={target_ip})"]


# --- lifecycle -----------------------------------------------------------------------------------------------


def up(settings: PiaSettings, paths: PiaPaths) -> list[str]:
    """The topology; core starts the agent (the record's :class:`~ws.api.NetworkAgent`) after this."""
    layout = layout_of(settings)
    topology.check_owned_leg(layout)
    changes = topology.ensure_host(layout, paths.state_dir)
    changes += topology.ensure_endpoint(layout)
    return changes


def down(settings: PiaSettings, paths: PiaPaths) -> list[str]:
    """The DNS forwarder, the namespace, then the host side; core stopped the agent before this."""
    layout = layout_of(settings)
    changes = stop_dns(paths, layout)
    changes += topology.remove_endpoint(layout)
    changes += topology.remove_host(layout, paths.state_dir)
    return changes


def status(settings: PiaSettings, paths: PiaPaths, agent_running: bool) -> tuple[bool, str, dict]:
    """(up, one line, details) from the kernel, whether the agent runs and the agent's last report."""
    from ws.network import bridge

    layout = layout_of(settings)
    state = bridge.inspect(layout.bridge).as_dict()
    extra: dict[str, Any] = {"bridge": state, **topology.endpoint_state(layout), "agent": read_json(paths.agent) or {}}
    health = None
    if extra["namespace"]:
        with netns.InNetns(layout.namespace) as inside:
            health = tunnel.health(layout, inside)
    extra["tunnel"] = None if health is None else {"present": health.present, "handshake_age": health.handshake_age}
    extra["agent_running"] = agent_running
    age_seconds = None if health is None else health.handshake_age
    fresh = age_seconds is not None and age_seconds < settings.handshake_timeout
    up = bool(state["exists"] and state["up"] and extra["namespace"] and extra["leg"] and fresh)
    age = "-" if health is None or health.handshake_age is None else f"{health.handshake_age:.0f} s ago"
    detail = (
        f"bridge {layout.bridge}, {layout.subnet}, no NAT; endpoint {layout.endpoint_address} in netns "
        f"{layout.namespace}; tunnel handshake {age}; agent {'running' if extra['agent_running'] else 'stopped'}"
    )
    error = extra["agent"].get("last_error")
    if error:
        detail += f"; last error: {error}"
    return up, detail, extra


def paths_of(ctx: Context) -> PiaPaths:
    return PiaPaths.under(ctx.state.root)


def target_ip_of(settings: PiaSettings, workspaces: Mapping[str, Any]) -> str | None:
    target = settings.receive_forwarded_port
    if target is None or target.workspace not in workspaces:
        return None
    return str(workspaces[target.workspace].ip)
