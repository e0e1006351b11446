"""ws's record of the instances it made: ``workspaces/NAME/instance.json`` holds the resolved workspace.

Written by ``ws up`` before the backend creates anything and removed by ``ws down`` and ``ws destroy``
once the instance is gone, so a record exists exactly while ws may have an instance of the workspace.
``ws apply`` reads it to find (and, with ``--prune``, stop) workspaces that are no longer configured:
their configuration is gone, and the record is what lets the backend and the network act on them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ws.state import atomic_write
from ws.types import Mount, Workspace, WorkspacePaths

if TYPE_CHECKING:
    from ws.plugins import Registry

INSTANCE_FILE = "instance.json"


def record_instance(workspace: Workspace) -> None:
    fields = dataclasses.asdict(workspace)
    options = workspace.options
    fields["options"] = options.model_dump(mode="json") if hasattr(options, "model_dump") else None
    content = json.dumps(fields, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write(workspace.paths.root / INSTANCE_FILE, content.encode(), 0o644)


def forget_instance(workspace: Workspace) -> None:
    (workspace.paths.root / INSTANCE_FILE).unlink(missing_ok=True)


@dataclass(frozen=True)
class RecordedInstance:
    name: str
    workspace: Workspace | None
    """The workspace as resolved when it was brought up; None if the record cannot be used (``problem``)."""
    problem: str = ""


def recorded_instances(state_dir: Path, registry: Registry) -> list[RecordedInstance]:
    """Every workspace ws has a record of, rebuilt as it was resolved when it was brought up."""
    from ws.errors import WsError

    found = []
    for path in sorted((state_dir / "workspaces").glob(f"*/{INSTANCE_FILE}")):
        name = path.parent.name
        try:
            found.append(RecordedInstance(name, _workspace_from(json.loads(path.read_text()), registry)))
        except WsError as exc:
            found.append(RecordedInstance(name, None, str(exc)))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            found.append(RecordedInstance(name, None, f"unreadable record {path}: {exc}"))
    return found


def _workspace_from(fields: dict, registry: Registry) -> Workspace:
    wtype = registry.workspace_type(fields["type"])
    options = fields.pop("options")
    if wtype.options_model is not None and options is not None:
        options = registry.section_model(wtype.name).model_validate(options)
    paths = {key: Path(value) for key, value in fields.pop("paths").items()}
    mounts = tuple(Mount(Path(m["host_path"]), m["guest_path"], m["read_only"]) for m in fields.pop("mounts"))
    return Workspace(**fields, mounts=mounts, paths=WorkspacePaths(**paths), options=options)
