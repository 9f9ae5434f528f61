"""Fleet files: racks come with the solver; today a fleet supplies chip-type
overrides and PUE for scoring."""
from __future__ import annotations

from typing import Any, Mapping

from trnsched.catalog import ChipType, chip_catalog
from trnsched.errors import InputError
from trnsched.jobs import read_json


def fleet_chips(data: Mapping[str, Any] | None, *, file: str | None = None) -> tuple[dict[str, ChipType], float | None]:
    """Chip catalog and PUE for a decoded fleet file (None = the built-in catalog)."""
    if data is None:
        return chip_catalog(), None
    if not isinstance(data, Mapping):
        raise InputError("a fleet file must be a JSON object", file=file)
    pue = data.get("pue")
    if pue is not None and (isinstance(pue, bool) or not isinstance(pue, (int, float)) or pue < 1.0):
        raise InputError(f"must be a number >= 1, got {pue!r}", file=file, field="pue")
    return chip_catalog(data.get("chip_types"), file=file), (float(pue) if pue is not None else None)


def load_fleet_chips(path: str | None) -> tuple[dict[str, ChipType], float | None]:
    if path is None:
        return fleet_chips(None)
    return fleet_chips(read_json(path), file=path)
