"""Cross-field validation and derivation: from the parsed TOML to fully resolved workspaces.

Everything that needs the loaded plugins (which types exist, their address ranges and name prefixes,
plugin config sections) or several keys at once (unique addresses) is checked here, and every problem is
collected so one run reports them all.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from pydantic import BaseModel, ValidationError

from ws import identity
from ws.config.checks import check_workspaces
from ws.config.loader import Config, problems_from_validation, toml_type
from ws.config.model import CoreConfig, WorkspaceConfig, check_interface_name, check_workspace_name
from ws.errors import ConfigError, ConfigProblem, PluginMissingError
from ws.plugins import KNOWN_DISTRIBUTIONS, PluginManager
from ws.state import read_leases, workspace_paths
from ws.types import Mount, Workspace, WorkspaceType


class MissingPluginProblem(ConfigProblem):
    """A problem that installing a plugin fixes (exit status 3 when it is the only kind)."""


def resolve(source: str, data: dict[str, Any], plugins: PluginManager) -> Config:
    """Validate every part on its own (core settings, each workspace, plugin sections) so one bad value
    never hides the problems of the others, then run the cross-field checks on what is valid."""
    problems: list[ConfigProblem] = []
    sections = _validate_sections(data, plugins, problems)
    core_data = {key: value for key, value in data.items() if key not in plugins.section_models}
    raw_workspaces = core_data.pop("workspaces", {})
    for key in core_data.keys() - CoreConfig.model_fields.keys():
        hint = KNOWN_DISTRIBUTIONS.get(key)
        if hint:
            problems.append(MissingPluginProblem(key, f"section [{key}] needs {hint}; install it"))
        else:
            problems.append(ConfigProblem(key, "unknown key"))
    core_data = {key: value for key, value in core_data.items() if key in CoreConfig.model_fields}
    core, bad_keys = _validated(CoreConfig, core_data, (), problems)
    specs = _validate_workspaces(raw_workspaces, problems)
    types = _check_workspaces(specs, plugins, problems)
    if core is None or "network" in bad_keys:
        _raise(source, problems)  # addresses cannot be checked against an invalid [network]
    core = core.model_copy(update={"workspaces": specs})
    taken, reserved = _check_explicit_addresses(core, problems)
    _check_unique_cids(core, types, problems)
    check_workspaces(core, problems)
    addresses = _assign_addresses(core, types, taken, reserved, problems)
    if problems:
        _raise(source, problems)
    workspaces = {
        name: _workspace(core, name, spec, types[name], addresses[name]) for name, spec in core.workspaces.items()
    }
    return Config(source=source, core=core, sections=sections, workspaces=workspaces)


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


def _validate_sections(data: dict[str, Any], plugins: PluginManager, problems: list[ConfigProblem]) -> dict:
    sections: dict[str, BaseModel] = {}
    for name, model in plugins.section_models.items():
        section, bad = _validated(model, data.get(name, {}), (name,), problems)
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
    specs: dict[str, WorkspaceConfig], plugins: PluginManager, problems: list[ConfigProblem]
) -> dict[str, WorkspaceType]:
    """What needs the plugins: the type exists, its options, the interface name fits, the network exists."""
    types: dict[str, WorkspaceType] = {}
    for name, spec in sorted(specs.items()):
        where = f"workspaces.{name}"
        try:
            types[name] = wtype = plugins.workspace_type(spec.type)
        except PluginMissingError as exc:
            problems.append(MissingPluginProblem(f"{where}.type", str(exc)))
            continue
        _check_backend_options(spec, wtype, where, problems)
        try:
            check_interface_name(wtype.interface_prefix + name)
        except ValueError:
            problems.append(ConfigProblem(where, _long_name(name, wtype)))
        if spec.network not in plugins.networks:
            problems.append(MissingPluginProblem(f"{where}.network", plugins.missing_message("network", spec.network)))
        if spec.cid is not None and not wtype.uses_cid:
            problems.append(ConfigProblem(f"{where}.cid", f"cid applies only to VM workspaces, not {wtype.name}"))
    return types


def _check_explicit_addresses(
    core: CoreConfig, problems: list[ConfigProblem]
) -> tuple[dict[ipaddress.IPv4Address, str], set[ipaddress.IPv4Address]]:
    """Explicit ``ip`` values: inside the subnet, not the host's or a reserved address, not shared."""
    network = core.network
    reserved = {network.subnet.network_address, network.subnet.broadcast_address, network.gateway}
    taken: dict[ipaddress.IPv4Address, str] = {}
    for name, spec in sorted(core.workspaces.items()):
        if spec.ip is None:
            continue
        where = f"workspaces.{name}.ip"
        if spec.ip not in network.subnet or spec.ip in reserved:
            role = "the host's address" if spec.ip == network.gateway else f"not usable in {network.subnet}"
            problems.append(ConfigProblem(where, f"{spec.ip} is {role}"))
        elif spec.ip in taken:
            problems.append(ConfigProblem(where, f"{spec.ip} is also the address of {taken[spec.ip]!r}"))
        else:
            taken[spec.ip] = name
    return taken, reserved


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


def _check_backend_options(spec: WorkspaceConfig, wtype: WorkspaceType, where: str, problems: list) -> None:
    """Extra keys are allowed only as one sub-table named after the backend (``[workspaces.dev.incus]``)."""
    for key, value in (spec.model_extra or {}).items():
        if key != wtype.name:
            problems.append(ConfigProblem(f"{where}.{key}", "unknown key"))
        elif not isinstance(value, dict):
            problems.append(ConfigProblem(f"{where}.{key}", "wrong type: expected a table of backend options"))


def _check_unique_cids(core: CoreConfig, types: dict[str, WorkspaceType], problems: list) -> None:
    seen: dict[int, str] = {}
    for name, spec in sorted(core.workspaces.items()):
        if name not in types or not types[name].uses_cid:
            continue
        cid = spec.cid if spec.cid is not None else identity.vsock_cid(name)
        if cid in seen:
            problems.append(ConfigProblem(f"workspaces.{name}.cid", f"cid {cid} is also used by {seen[cid]!r}"))
        seen[cid] = name


def _assign_addresses(
    core: CoreConfig,
    types: dict[str, WorkspaceType],
    taken: dict[ipaddress.IPv4Address, str],
    reserved: set[ipaddress.IPv4Address],
    problems: list[ConfigProblem],
) -> dict[str, ipaddress.IPv4Address]:
    """Explicit addresses first, then earlier leases, then a hash-chosen free slot of the type's range.

    The lease file (written by ``ws up``) keeps an auto-assigned address stable even when workspaces are
    added later; the hash start keeps it stable across hosts that never ran ``ws up``.
    """
    subnet = core.network.subnet
    addresses = {name: spec.ip for name, spec in core.workspaces.items() if spec.ip is not None}
    automatic = sorted(name for name, spec in core.workspaces.items() if spec.ip is None and name in types)
    leases = read_leases(core.state_dir)
    for name in list(automatic):
        lease = leases.get(name)
        if lease is not None and lease in subnet and lease not in reserved and lease not in taken:
            taken[lease] = name
            addresses[name] = lease
            automatic.remove(name)
    for name in automatic:
        first, last = types[name].ip_range
        slots = [subnet.network_address + n for n in range(first, last + 1)]
        slots = [ip for ip in slots if ip in subnet and ip not in reserved]
        if not slots:
            problems.append(
                ConfigProblem(
                    f"workspaces.{name}.ip",
                    f"the {types[name].name} range .{first}-.{last} does not fit {subnet}; set ip explicitly",
                )
            )
            continue
        start = int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(slots)
        free = next((ip for ip in slots[start:] + slots[:start] if ip not in taken), None)
        if free is None:
            problems.append(
                ConfigProblem(
                    f"workspaces.{name}.ip",
                    f"no free address left in the {types[name].name} range .{first}-.{last}; set ip explicitly",
                )
            )
            continue
        taken[free] = name
        addresses[name] = free
    return addresses


def _workspace(
    core: CoreConfig, name: str, spec: WorkspaceConfig, wtype: WorkspaceType, ip: ipaddress.IPv4Address
) -> Workspace:
    seed = f"{wtype.mac_seed}-{name}" if wtype.mac_seed else f"{wtype.name}-{name}"
    cid = (spec.cid if spec.cid is not None else identity.vsock_cid(name)) if wtype.uses_cid else None
    return Workspace(
        name=name,
        type=wtype.name,
        ip=str(ip),
        prefixlen=core.network.subnet.prefixlen,
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
        options=dict((spec.model_extra or {}).get(wtype.name) or {}),
    )
