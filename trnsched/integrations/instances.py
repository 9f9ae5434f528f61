"""Cloud instance types -> chip types (data/instance_types.json, with sources),
which a user may extend or override for their own fleet."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

from trnsched.inputs.errors import InputError


@dataclass(frozen=True)
class InstanceType:
    name: str
    chip_type: str
    chips: int | None               # per instance, where the source gives it
    neuron_cores_per_chip: int | None = None


@lru_cache(maxsize=1)
def builtin_instance_types() -> dict[str, InstanceType]:
    raw = json.loads(resources.files("trnsched").joinpath("data").joinpath("instance_types.json").read_text())
    return {name: InstanceType(name, e["chip_type"], e.get("chips"), e.get("neuron_cores_per_chip"))
            for name, e in raw["instance_types"].items()}


def instance_table(extra: Mapping[str, Any] | None = None, *, file: str | None = None) -> dict[str, InstanceType]:
    """The built-in table with a user's entries ({name: {chip_type, chips?,
    neuron_cores_per_chip?}}) over it."""
    table = dict(builtin_instance_types())
    for name, entry in (extra or {}).items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("chip_type"), str):
            raise InputError("must be an object with a chip_type", file=file, field=f"instance_types.{name}")
        chips = entry.get("chips")
        if chips is not None and (isinstance(chips, bool) or not isinstance(chips, int) or chips < 1):
            raise InputError(f"must be a positive whole number, got {chips!r}", file=file,
                             field=f"instance_types.{name}.chips")
        table[name] = InstanceType(name, entry["chip_type"], chips, entry.get("neuron_cores_per_chip"))
    return table


def chip_for(instance_type: str, table: Mapping[str, InstanceType] | None = None) -> InstanceType | None:
    return (table if table is not None else builtin_instance_types()).get(instance_type)
