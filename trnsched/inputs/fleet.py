"""Fleets: racks (scale-up domains) with chips per type, busy chips, power caps, pods.

A rack with two chip types is a hybrid fused-fabric rack (Trainium and Nvidia
chips on one NVLink-Fusion-style fabric): its chips share the rack's power cap.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, Mapping

from trnsched.inputs.catalog import ChipType, chip_catalog, default_pue
from trnsched.inputs.errors import InputError
from trnsched.inputs.io import read_json

# Scale-out figures that override every chip type's; jobs never span pods, so
# there is no cross-pod figure to give.
NETWORK_FIELDS = {"scaleout_gbps_per_chip": "scaleout_gbps", "latency_us_in_pod": "scaleout_latency_us"}


@dataclass(frozen=True)
class Rack:
    id: str
    chips: Mapping[str, int]                 # chip type -> chips installed
    used: Mapping[str, int] = field(default_factory=dict)   # chip type -> chips already busy
    power_cap_kw: float | None = None        # IT power at the rack, PUE excluded
    pod: str = "default"

    def free(self, chip_type: str) -> int:
        return self.chips.get(chip_type, 0) - self.used.get(chip_type, 0)

    @property
    def hybrid(self) -> bool:
        return len(self.chips) > 1


@dataclass(frozen=True)
class Fleet:
    racks: tuple[Rack, ...]
    chip_types: Mapping[str, ChipType]
    pue: float
    network: Mapping[str, Any] = field(default_factory=dict)
    name: str = "fleet"

    def types_present(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.racks:
            for t in r.chips:
                seen.setdefault(t, None)
        return list(seen)

    def baseline_kw(self, rack: Rack) -> float:
        """IT power a rack draws before anything is placed: busy chips at TDP,
        free chips idle, and every chip's share of its hosts."""
        total = 0.0
        for t, count in rack.chips.items():
            chip = self.chip_types[t]
            busy = rack.used.get(t, 0)
            total += (busy * chip.tdp_w + (count - busy) * chip.idle_w + count * chip.host_w) / 1000.0
        return total

    def groups(self) -> list[list[int]]:
        """Interchangeable racks (same pod, chips, busy chips and power cap), as lists
        of rack indices in fleet order."""
        index: dict[tuple, int] = {}
        out: list[list[int]] = []
        for i, r in enumerate(self.racks):
            busy = tuple(sorted((t, n) for t, n in r.used.items() if n))
            key = (r.pod, tuple(sorted(r.chips.items())), busy, r.power_cap_kw)
            if key not in index:
                index[key] = len(out)
                out.append([])
            out[index[key]].append(i)
        return out

    def with_busy(self, extra: Mapping[int, Mapping[str, int]], watts: Mapping[int, float] | None = None) -> "Fleet":
        """This fleet with more chips busy: `extra` maps rack index -> chip type ->
        chips.  `watts` (rack index -> IT watts those chips draw above idle) keeps
        each rack's power headroom exact: busy chips count at TDP in baseline_kw,
        so the cap moves by the difference."""
        racks = list(self.racks)
        for i, more in extra.items():
            r = racks[i]
            used = {t: r.used.get(t, 0) + more.get(t, 0) for t in set(r.used) | set(more)}
            cap = r.power_cap_kw
            if cap is not None and watts is not None:
                at_tdp = sum(n * (self.chip_types[t].tdp_w - self.chip_types[t].idle_w) for t, n in more.items())
                cap += (at_tdp - watts.get(i, 0.0)) / 1000.0
            racks[i] = replace(r, used=used, power_cap_kw=cap)
        return replace(self, racks=tuple(racks))

    def largest_pod_free(self, chip_type: str) -> int:
        """The most free chips of this type in any one pod (jobs never span pods)."""
        per_pod: dict[str, int] = {}
        for r in self.racks:
            per_pod[r.pod] = per_pod.get(r.pod, 0) + r.free(chip_type)
        return max(per_pod.values(), default=0)

    def totals(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.racks:
            for t, count in r.chips.items():
                row = out.setdefault(t, {"racks": 0, "chips": 0, "used": 0, "free": 0})
                row["racks"] += 1
                row["chips"] += count
                row["used"] += r.used.get(t, 0)
                row["free"] += r.free(t)
        return out

    def to_dict(self) -> dict:
        return {"racks": [{"id": r.id, "pod": r.pod, "chips": dict(r.chips), "used": dict(r.used),
                           "power_cap_kw": r.power_cap_kw} for r in self.racks],
                "pue": self.pue, "network": dict(self.network)}


def _int(value: Any, where: str, file: str | None, *, positive: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (positive and value == 0):
        kind = "a positive" if positive else "a non-negative"
        raise InputError(f"must be {kind} whole number, got {value!r}", file=file, field=where)
    return value


def parse_fleet(data: Any, *, file: str | None = None) -> Fleet:
    """A fleet from a decoded fleet.json; every failure names the file and the field."""
    if not isinstance(data, Mapping):
        raise InputError("a fleet file must be a JSON object", file=file)
    unknown = set(data) - {"racks", "chip_types", "network", "pue", "name", "note"}
    if unknown:
        raise InputError("is not a known fleet field", file=file, field=sorted(unknown)[0])
    pue = data.get("pue", default_pue())
    if isinstance(pue, bool) or not isinstance(pue, (int, float)) or pue < 1.0:
        raise InputError(f"must be a number >= 1, got {pue!r}", file=file, field="pue")
    chips = chip_catalog(data.get("chip_types"), file=file)
    raw_racks = data.get("racks")
    if not isinstance(raw_racks, list) or not raw_racks:
        raise InputError("a fleet needs a non-empty list of racks", file=file, field="racks")
    racks, seen = [], set()
    for i, raw in enumerate(raw_racks):
        where = f"racks[{i}]"
        if not isinstance(raw, Mapping):
            raise InputError("must be an object", file=file, field=where)
        rid = raw.get("id")
        if not isinstance(rid, str) or not rid:
            raise InputError(f"must be a non-empty string, got {rid!r}", file=file, field=f"{where}.id")
        where = f"racks[{rid}]"
        if rid in seen:
            raise InputError("duplicate rack id", file=file, field=f"{where}.id")
        seen.add(rid)
        extra = set(raw) - {"id", "chips", "used", "power_cap_kw", "pod", "note"}
        if extra:
            raise InputError("is not a known rack field", file=file, field=f"{where}.{sorted(extra)[0]}")
        counts = raw.get("chips")
        if not isinstance(counts, Mapping) or not counts:
            raise InputError("must map chip type to a count", file=file, field=f"{where}.chips")
        installed = {}
        for t, c in counts.items():
            if t not in chips:
                raise InputError(f"unknown chip type {t!r}; known: {', '.join(sorted(chips))}",
                                 file=file, field=f"{where}.chips")
            installed[t] = _int(c, f"{where}.chips.{t}", file, positive=True)
            domain = chips[t].domain_size
            if installed[t] > domain:
                # A rack is one scale-up domain: bigger, and every job over one
                # domain's chips would be refused with a reason that contradicts it.
                raise InputError(f"{installed[t]} {t} exceed one scale-up domain of {domain}: a rack is one domain, "
                                 f"so list it as {-(-installed[t] // domain)} racks of at most {domain}",
                                 file=file, field=f"{where}.chips.{t}")
        used = {}
        for t, c in (raw.get("used") or {}).items():
            if t not in installed:
                raise InputError(f"rack has no {t!r} chips", file=file, field=f"{where}.used")
            used[t] = _int(c, f"{where}.used.{t}", file, positive=False)
            if used[t] > installed[t]:
                raise InputError(f"{used[t]} busy of {installed[t]} installed", file=file, field=f"{where}.used.{t}")
        cap = raw.get("power_cap_kw")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, (int, float)) or cap <= 0):
            raise InputError(f"must be a positive number, got {cap!r}", file=file, field=f"{where}.power_cap_kw")
        pod = raw.get("pod", "default")
        if not isinstance(pod, str) or not pod:
            raise InputError(f"must be a non-empty string, got {pod!r}", file=file, field=f"{where}.pod")
        racks.append(Rack(rid, installed, used, float(cap) if cap is not None else None, pod))
    network = {}
    net = data.get("network") or {}
    if not isinstance(net, Mapping):
        raise InputError("must be an object", file=file, field="network")
    for k, v in net.items():
        if k not in NETWORK_FIELDS:
            raise InputError(f"is not one of {', '.join(NETWORK_FIELDS)}", file=file, field=f"network.{k}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise InputError(f"must be a positive number, got {v!r}", file=file, field=f"network.{k}")
        network[k] = float(v)
    if network:
        override = {NETWORK_FIELDS[k]: v for k, v in network.items()}
        chips = {name: replace(c, **override) for name, c in chips.items()}
    return Fleet(tuple(racks), chips, float(pue), network, name=str(data.get("name", file or "fleet")))


def load_fleet(path: str | None = None) -> Fleet:
    """A fleet file, or the built-in default fleet when `path` is None."""
    if path is None:
        return default_fleet()
    return parse_fleet(read_json(path), file=path)


def default_fleet() -> Fleet:
    text = resources.files("trnsched").joinpath("data").joinpath("default_fleet.json").read_text()
    return parse_fleet(json.loads(text), file="<default fleet>")
