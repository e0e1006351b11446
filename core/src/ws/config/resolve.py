"""Cross-field validation and derivation: from the parsed TOML to fully resolved workspaces.

Everything that needs the loaded plugins (which types and networks exist, a type's options model, each
network's subnet and ranges, plugin config sections) or several keys at once (unique addresses per network)
is checked here, and every problem is collected so one run reports them all.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from ws import identity
from ws.config.checks import check_workspaces
from ws.config.model import CoreConfig, WorkspaceConfig, check_interface_name, check_workspace_name
from ws.config.report import problems_from_validation, toml_type
from ws.config.resolved import Config
from ws.errors import ConfigError, ConfigProblem, PluginMissingError, WsError
from ws.hints import install_hint
from ws.plugins.dispatch import define_network
from ws.state import read_leases, workspace_paths
from ws.types import Mount, Network, Workspace, WorkspaceType

if TYPE_CHECKING:
    from ws.plugins import Registry

SANDBOX = "sandbox"
"""Core's own network: always defined, so ``ws network up`` works before any workspace exists."""


class MissingPluginProblem(ConfigProblem):
    """A problem that installing a plugin fixes (exit status 3 when it is the only kind)."""


def resolve(source: str, data: dict[str, Any], registry: Registry) -> Config:
    """Validate every part on its own (core settings, each workspace, plugin sections, backend options) so
    one bad value never hides the problems of the others, then run the cross-field checks on what is valid."""
    problems: list[ConfigProblem] = []
    plugin_keys = set(registry.sections)
    sections = _validate_sections(data, registry, problems)
    core_data = {key: value for key, value in data.items() if key not in plugin_keys}
    raw_workspaces = core_data.pop("workspaces", {})
    for key in core_data.keys() - CoreConfig.model_fields.keys():
        hint = install_hint(key)
        if hint:
            problems.append(MissingPluginProblem(key, f"section [{key}] needs a plugin; {hint}"))
        else:
            problems.append(ConfigProblem(key, "unknown key"))
    core_data = {key: value for key, value in core_data.items() if key in CoreConfig.model_fields}
    core, bad_keys = _validated(CoreConfig, core_data, (), problems)
    specs = _validate_workspaces(raw_workspaces, problems)
    types = _check_workspaces(specs, registry, problems)
    options = _validate_options(specs, types, data, registry, sections, problems)
    if core is None or "network" in bad_keys:
        _raise(source, problems)  # the sandbox cannot be defined from an invalid [network]
    core = core.model_copy(update={"workspaces": specs})
    networks = _define_networks(core, sections, specs, registry, problems)
    addresses = _assign_addresses(core, networks, types, problems)
    _check_unique_cids(core, types, problems)
    check_workspaces(core, problems)
    if problems:
        _raise(source, problems)
    workspaces = {
        name: _workspace(core, name, spec, types[name], networks[spec.network], addresses[name], options.get(name))
        for name, spec in core.workspaces.items()
    }
    return Config(source=source, core=core, sections=sections, workspaces=workspaces, networks=networks)


def _raise(source: str, problems: list[ConfigProblem]) -> None:
    error = ConfigError(source, problems)
    if all(isinstance(problem, MissingPluginProblem) for problem in problems):
        error.exit_code = PluginMissingError.exit_code
    raise error


def _validated(model: type[BaseModel], data: object, prefix: tuple[str, ...], problems: list) -> tuple[Any, set[str]]:
    """The validated model and the set of keys that had errors (problems are appended).

    When some keys are invalid, the model is validated once more without them, so the cross-field checks
    still run on the valid rest and report their problems in the same run; ``None`` if even that fails.
    """
    try:
        return model.model_validate(data), set()
    except ValidationError as exc:
        problems += problems_from_validation(exc, prefix=prefix)
        bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
    if not isinstance(data, dict) or not bad:
        return None, bad
    try:
        return model.model_validate({key: value for key, value in data.items() if key not in bad}), bad
    except ValidationError:
        return None, bad


def _validate_sections(data: dict[str, Any], registry: Registry, problems: list[ConfigProblem]) -> dict:
    """Plugin sections and backend option sections (``[<type>]``), each with its own model."""
    sections: dict[str, BaseModel] = {}
    for name in registry.sections:
        section, bad = _validated(registry.section_model(name), data.get(name, {}), (name,), problems)
        if section is not None and not bad:
            sections[name] = section
    return sections


def _validate_workspaces(raw: object, problems: list[ConfigProblem]) -> dict[str, WorkspaceConfig]:
    """Each ``[workspaces.NAME]`` on its own; what is valid goes on to the cross-field checks."""
    if not isinstance(raw, dict):
        problems.append(ConfigProblem("workspaces", f"wrong type: expected a table, got {toml_type(raw)}"))
        return {}
    specs = {}
    for name, table in sorted(raw.items()):
        _check_name(name, f"workspaces.{name}", problems)
        spec, _bad = _validated(WorkspaceConfig, table, ("workspaces", name), problems)
        if spec is not None:  # without its invalid keys: still checked against the others
            specs[name] = spec
    return specs


def _check_workspaces(
    specs: dict[str, WorkspaceConfig], registry: Registry, problems: list[ConfigProblem]
) -> dict[str, WorkspaceType]:
    """What needs the plugins: the type exists, the interface name fits, the network exists."""
    types: dict[str, WorkspaceType] = {}
    for name, spec in sorted(specs.items()):
        where = f"workspaces.{name}"
        try:
            types[name] = wtype = registry.workspace_type(spec.type)
        except PluginMissingError as exc:
            problems.append(MissingPluginProblem(f"{where}.type", str(exc)))
            continue
        try:
            check_interface_name(wtype.interface_prefix + name)
        except ValueError:
            problems.append(ConfigProblem(where, _long_name(name, wtype)))
        if spec.network not in registry.networks:
            problems.append(MissingPluginProblem(f"{where}.network", registry.missing_message("network", spec.network)))
        if spec.cid is not None and not wtype.uses_cid:
            problems.append(ConfigProblem(f"{where}.cid", f"cid applies only to VM workspaces, not {wtype.name}"))
    return types


def _validate_options(
    specs: dict[str, WorkspaceConfig],
    types: dict[str, WorkspaceType],
    data: dict[str, Any],
    registry: Registry,
    sections: dict[str, BaseModel],
    problems: list[ConfigProblem],
) -> dict[str, Any]:
    """Each workspace's backend options: ``[<type>]`` with ``[workspaces.NAME.<type>]`` merged over it,
    validated by the type's model. Any other extra key of a workspace is unknown."""
    options: dict[str, Any] = {}
    for name, spec in sorted(specs.items()):
        if name not in types:
            continue
        wtype, where = types[name], f"workspaces.{name}"
        overrides: dict = {}
        for key, value in (spec.model_extra or {}).items():
            if key != wtype.name or wtype.options_model is None:
                problems.append(ConfigProblem(f"{where}.{key}", "unknown key"))
            elif not isinstance(value, dict):
                problems.append(ConfigProblem(f"{where}.{key}", "wrong type: expected a table of backend options"))
            else:
                overrides = value
        if wtype.options_model is None:
            continue
        if wtype.name not in sections:
            continue  # [<type>] itself is invalid: already reported
        if not overrides:
            options[name] = sections[wtype.name]
            continue
        base = data.get(wtype.name) if isinstance(data.get(wtype.name), dict) else {}
        model = registry.section_model(wtype.name)
        merged, bad = _validated(model, {**base, **overrides}, (*where.split("."), wtype.name), problems)
        if merged is not None and not bad:
            options[name] = merged
    return options


def _define_networks(
    core: CoreConfig,
    sections: dict[str, BaseModel],
    specs: dict[str, WorkspaceConfig],
    registry: Registry,
    problems: list,
) -> dict[str, Network]:
    """The owner's record of every network a workspace uses, and of the sandbox."""
    used: dict[str, str] = {SANDBOX: "network"} if SANDBOX in registry.networks else {}
    for name, spec in sorted(specs.items()):
        if spec.network in registry.networks:
            used.setdefault(spec.network, f"workspaces.{name}.network")
    networks: dict[str, Network] = {}
    for network_name, where in used.items():
        try:
            network = define_network(registry, network_name, core, sections)
            ipaddress.IPv4Network(network.subnet, strict=True)
        except (ValueError, WsError) as exc:
            problems.append(ConfigProblem(where, f"network {network_name!r} cannot be defined: {exc}"))
            continue
        if not isinstance(network, Network) or network.name != network_name:
            problems.append(ConfigProblem(where, f"the plugin owning {network_name!r} returned {network!r}"))
            continue
        networks[network_name] = network
    return networks


def _check_name(name: str, where: str, problems: list[ConfigProblem]) -> None:
    try:
        check_workspace_name(name)
    except ValueError as exc:
        problems.append(ConfigProblem(where, str(exc)))


def _long_name(name: str, wtype: WorkspaceType) -> str:
    limit = 15 - len(wtype.interface_prefix.encode())
    return (
        f"name {name!r} is too long for a {wtype.name} workspace: its interface "
        f"{wtype.interface_prefix + name!r} would exceed Linux's 15 bytes (use at most {limit} characters)"
    )


def _check_unique_cids(core: CoreConfig, types: dict[str, WorkspaceType], problems: list) -> None:
    seen: dict[int, str] = {}
    for name, spec in sorted(core.workspaces.items()):
        if name not in types or not types[name].uses_cid:
            continue
        cid = spec.cid if spec.cid is not None else identity.vsock_cid(name)
        if cid in seen:
            problems.append(ConfigProblem(f"workspaces.{name}.cid", f"cid {cid} is also used by {seen[cid]!r}"))
        seen[cid] = name


def _reserved(network: Network) -> set[ipaddress.IPv4Address]:
    subnet = ipaddress.IPv4Network(network.subnet)
    named = {network.host_address, network.gateway, *network.reserved, *network.dns}
    addresses = {subnet.network_address, subnet.broadcast_address}
    for text in named:
        try:
            addresses.add(ipaddress.IPv4Address(text))
        except ValueError:
            continue
    return addresses


def _assign_addresses(
    core: CoreConfig, networks: dict[str, Network], types: dict[str, WorkspaceType], problems: list[ConfigProblem]
) -> dict[str, ipaddress.IPv4Address]:
    """Per network: explicit addresses first, then earlier leases, then a hash-chosen free slot of the
    type's range in that network.

    The lease file (written by ``ws up``) keeps an auto-assigned address stable even when workspaces are
    added later; the hash start keeps it stable across hosts that never ran ``ws up``.
    """
    leases = read_leases(core.state_dir)
    addresses: dict[str, ipaddress.IPv4Address] = {}
    for network in networks.values():
        members = {n: s for n, s in core.workspaces.items() if s.network == network.name and n in types}
        subnet = ipaddress.IPv4Network(network.subnet)
        reserved = _reserved(network)
        taken = _explicit_addresses(members, network, subnet, reserved, addresses, problems)
        automatic = sorted(name for name, spec in members.items() if spec.ip is None)
        for name in list(automatic):
            lease = leases.get(name)
            if lease is not None and lease in subnet and lease not in reserved and lease not in taken:
                taken[lease] = name
                addresses[name] = lease
                automatic.remove(name)
        for name in automatic:
            free = _free_slot(name, types[name], network, subnet, reserved, taken, problems)
            if free is not None:
                taken[free] = name
                addresses[name] = free
    return addresses


def _explicit_addresses(
    members: dict[str, WorkspaceConfig],
    network: Network,
    subnet: ipaddress.IPv4Network,
    reserved: set[ipaddress.IPv4Address],
    addresses: dict[str, ipaddress.IPv4Address],
    problems: list[ConfigProblem],
) -> dict[ipaddress.IPv4Address, str]:
    """Explicit ``ip`` values: inside the network's subnet, not a reserved address, not shared."""
    taken: dict[ipaddress.IPv4Address, str] = {}
    for name, spec in sorted(members.items()):
        if spec.ip is None:
            continue
        where = f"workspaces.{name}.ip"
        if spec.ip not in subnet or spec.ip in reserved:
            role = "the host's address" if str(spec.ip) == network.host_address else f"not usable in {subnet}"
            problems.append(ConfigProblem(where, f"{spec.ip} is {role} (network {network.name!r})"))
        elif spec.ip in taken:
            problems.append(ConfigProblem(where, f"{spec.ip} is also the address of {taken[spec.ip]!r}"))
        else:
            taken[spec.ip] = name
            addresses[name] = spec.ip
    return taken


def _free_slot(
    name: str,
    wtype: WorkspaceType,
    network: Network,
    subnet: ipaddress.IPv4Network,
    reserved: set[ipaddress.IPv4Address],
    taken: dict[ipaddress.IPv4Address, str],
    problems: list[ConfigProblem],
) -> ipaddress.IPv4Address | None:
    first, last = network.ranges.get(wtype.name, wtype.ip_range)
    slots = [subnet.network_address + n for n in range(first, last + 1)]
    slots = [ip for ip in slots if ip in subnet and ip not in reserved]
    where = f"workspaces.{name}.ip"
    if not slots:
        message = f"the {wtype.name} range .{first}-.{last} does not fit {subnet} (network {network.name!r})"
        problems.append(ConfigProblem(where, f"{message}; set ip explicitly"))
        return None
    start = int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(slots)
    free = next((ip for ip in slots[start:] + slots[:start] if ip not in taken), None)
    if free is None:
        message = f"no free address left in the {wtype.name} range .{first}-.{last} of network {network.name!r}"
        problems.append(ConfigProblem(where, f"{message}; set ip explicitly"))
    return free


def _workspace(
    core: CoreConfig,
    name: str,
    spec: WorkspaceConfig,
    wtype: WorkspaceType,
    network: Network,
    ip: ipaddress.IPv4Address,
    options: Any,
) -> Workspace:
    seed = f"{wtype.mac_seed}-{name}" if wtype.mac_seed else f"{wtype.name}-{name}"
    cid = (spec.cid if spec.cid is not None else identity.vsock_cid(name)) if wtype.uses_cid else None
    return Workspace(
        name=name,
        type=wtype.name,
        ip=str(ip),
        prefixlen=network.prefixlen,
        mac=identity.mac_address(seed),
        hostname=identity.hostname(name),
        host_interface=wtype.interface_prefix + name,
        instance_name=identity.instance_name(name),
        network=spec.network,
        image=spec.image,
        autostart=spec.autostart,
        cpus=spec.cpus,
        memory_mib=spec.memory_mib,
        cid=cid,
        host_key=spec.host_key.strip() if spec.host_key else None,
        mounts=tuple(Mount(m.host, m.guest, m.read_only) for m in spec.mounts),
        paths=workspace_paths(core.state_dir, name),
        options=options,
    )
