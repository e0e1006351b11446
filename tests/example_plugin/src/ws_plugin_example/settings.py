"""The example plugin's configuration models (pydantic, imported only when the configuration is read).

* ``ExampleOptions``: the type's options, ``[example]`` with each ``[workspaces.NAME.example]`` merged
  over it (``options_model`` of the type); core validates them with the configuration.
* ``ExampleNetwork``: the ``[example-net]`` section (``ws_config_sections``) the network is defined from.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, field_validator, model_validator


class ExampleOptions(BaseModel):
    """The greeting the example puts into an example workspace."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    greeting: str = "hello"


class ExampleNetwork(BaseModel):
    """The example network's subnet and the host numbers example workspaces get addresses from."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    subnet: str = "10.77.0.0/24"
    range: list[int] = [10, 49]
    """First and last host number (TOML has no tuples)."""

    @field_validator("subnet")
    @classmethod
    def _network(cls, value: str) -> str:
        try:
            return str(ipaddress.IPv4Network(value, strict=True))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IPv4 network ({exc})") from None

    @model_validator(mode="after")
    def _range(self) -> ExampleNetwork:
        if len(self.range) != 2:
            raise ValueError("range must be [first, last]")
        first, last = self.range
        if not 1 <= first <= last:
            raise ValueError(f"range {first}-{last} must be two host numbers, first <= last")
        return self
