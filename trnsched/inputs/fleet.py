"""Fleets: racks (scale-up domains) with chips per type, busy chips, power caps, pods.

A rack with two chip types is a hybrid fused-fabric rack (Trainium and Nvidia
chips on one NVLink-Fusion-style fabric): its chips share the rack's power cap.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, Mapping

from trnsched.inputs.catalog import ChipType, chip_catalog, chip_rules, default_pue
from trnsched.inputs.errors import InputError
from trnsched.inputs.io import read_json
from trnsched.inputs.schema import CHECKED
from trnsched.inputs.validate import validate_fleet, validate_fleet_object

# Scale-out figures that override every chip type's; jobs never span pods, so
# there is no cross-pod figure to give.
NETWORK_FIELDS = {"scaleout_gbps_per_chip": "scaleout_gbps", "latency_us_in_pod": "scaleout_latency_us"}


@dataclass(frozen=True)
class Node:
    """A host of a rack, for exports: work is pinned to nodes by name."""
    name: str
    chip_type: str
    chips: int
    used: int = 0


@dataclass(frozen=True)
class Rack:
    id: str
    chips: Mapping[str, int]                 # chip type -> chips installed
    used: Mapping[str, int] = field(default_factory=dict)   # chip type -> chips already busy
    power_cap_kw: float | None = None        # IT power at the rack, PUE excluded
    pod: str = "default"
    nodes: tuple[Node, ...] = ()             # its hosts, where known (fleet import writes them)
    labels: Mapping[str, str] = field(default_factory=dict)   # labels all its nodes carry

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
        """The fleet as a fleet file holds it (chip type overrides aside)."""
        racks = []
        for r in self.racks:
            rack = {"id": r.id, "pod": r.pod, "chips": dict(r.chips), "used": dict(r.used),
                    "power_cap_kw": r.power_cap_kw}
            if r.nodes:
                rack["nodes"] = [{"name": n.name, "chip_type": n.chip_type, "chips": n.chips, "used": n.used}
                                 for n in r.nodes]
            if r.labels:
                rack["labels"] = dict(r.labels)
            racks.append(rack)
        return {"name": self.name, "racks": racks, "pue": self.pue, "network": dict(self.network)}


def parse_fleet(data: Any, *, file: str | None = None) -> Fleet:
    """A fleet from a decoded fleet.json.  Types and ranges are schema.py's; what
    needs the chip catalog (known types, scale-up domains, idle and busy draw
    against the cap) is checked here.  Every failure names the file and the field."""
    spec = validate_fleet(data, file=file)
    chips = chip_catalog(spec.chip_types, file=file)
    network = {k: float(v) for k, v in (spec.network.model_dump() if spec.network else {}).items() if v is not None}
    if network:
        override = {NETWORK_FIELDS[k]: v for k, v in network.items()}
        chips = {name: replace(c, **override) for name, c in chips.items()}
    pue = float(spec.pue) if spec.pue is not None else default_pue()
    racks = tuple(rack for raw in spec.racks for rack in _racks_of(raw, file))
    fleet = Fleet(racks, chips, pue, network, name=spec.name or file or "fleet")
    check_racks(fleet, file)
    object.__setattr__(fleet, CHECKED, True)       # as jobs.py marks its jobs: taken as they are
    return fleet


def _racks_of(raw: Any, file: str | None) -> list[Rack]:
    """The racks one fleet-file entry stands for: itself, or with `domains: N`
    N equal racks `<id>/0`..`<id>/N-1` sharing its chips, busy chips and cap
    (a pod of 16 H100 nodes written as one entry of 128 chips)."""
    cap = float(raw.power_cap_kw) if raw.power_cap_kw is not None else None
    nodes = tuple(Node(n.name, n.chip_type, n.chips, n.used) for n in raw.nodes or ())
    used = dict(raw.used or {})
    if raw.domains == 1:
        return [Rack(raw.id, dict(raw.chips), used, cap, raw.pod, nodes, dict(raw.labels or {}))]
    where = f"racks[{raw.id}]"
    if nodes:
        raise InputError("an entry with nodes is one rack: list its domains as racks of their own", file=file,
                         field=f"{where}.domains")
    for what, counts in (("chips", raw.chips), ("used", used)):
        for t, n in counts.items():
            if n % raw.domains:
                raise InputError(f"{n} {t} do not split evenly into {raw.domains} domains", file=file,
                                 field=f"{where}.{what}.{t}")
    share = {t: n // raw.domains for t, n in raw.chips.items()}
    busy = {t: n // raw.domains for t, n in used.items()}
    return [Rack(f"{raw.id}/{i}", share, busy, cap / raw.domains if cap is not None else None, raw.pod, (),
                 dict(raw.labels or {})) for i in range(raw.domains)]


def check_fleet(fleet: Fleet) -> None:
    """A Fleet built in code, held to what a fleet file must satisfy."""
    if getattr(fleet, CHECKED, False):
        return
    validate_fleet_object(fleet)
    for chip in fleet.chip_types.values():
        chip_rules(chip, file="<fleet>")
    check_racks(fleet, "<fleet>")


def check_racks(fleet: Fleet, file: str | None) -> None:
    """What needs the chip catalog: ids unique, chip types known, no rack beyond
    one scale-up domain, busy chips installed, and no rack over its power cap
    before anything is placed."""
    seen: set[str] = set()
    seen_nodes: set[str] = set()
    for rack in fleet.racks:
        where = f"racks[{rack.id}]"
        if rack.id in seen:
            raise InputError("duplicate rack id", file=file, field=f"{where}.id")
        seen.add(rack.id)
        for t, count in rack.chips.items():
            if t not in fleet.chip_types:
                raise InputError(f"unknown chip type {t!r}; known: {', '.join(sorted(fleet.chip_types))}",
                                 file=file, field=f"{where}.chips")
            domain = fleet.chip_types[t].domain_size
            if count > domain:
                # A rack is one scale-up domain: bigger, and every job over one
                # domain's chips would be refused with a reason that contradicts it.
                raise InputError(f"{count} {t} exceed one scale-up domain of {domain}: a rack is one domain, "
                                 f"so list it as {-(-count // domain)} racks of at most {domain} (or give "
                                 f"\"domains\": {-(-count // domain)} if they are equal)",
                                 file=file, field=f"{where}.chips.{t}")
        for t, n in rack.used.items():
            if t not in rack.chips:
                raise InputError(f"rack has no {t!r} chips", file=file, field=f"{where}.used")
            if n > rack.chips[t]:
                raise InputError(f"{n} busy of {rack.chips[t]} installed", file=file, field=f"{where}.used.{t}")
        if rack.nodes:
            _check_nodes(rack, where, file, seen_nodes)
        if rack.power_cap_kw is not None:
            drawn = fleet.baseline_kw(rack)
            if drawn > rack.power_cap_kw + 1e-9:
                raise InputError(f"{rack.power_cap_kw:g} kW is below the {drawn:.1f} kW the rack draws before "
                                 f"anything is placed (busy chips at TDP, free chips idle, hosts): raise the cap "
                                 f"or mark fewer chips busy", file=file, field=f"{where}.power_cap_kw")


def _check_nodes(rack: Rack, where: str, file: str | None, seen: set[str]) -> None:
    """A rack's nodes hold its chips exactly, busy ones included, and a node
    belongs to one rack."""
    for i, node in enumerate(rack.nodes):
        if node.name in seen:
            raise InputError(f"node {node.name!r} is listed twice", file=file, field=f"{where}.nodes[{i}].name")
        seen.add(node.name)
        if node.chip_type not in rack.chips:
            raise InputError(f"rack has no {node.chip_type!r} chips", file=file, field=f"{where}.nodes[{i}].chip_type")
        if node.used > node.chips:
            raise InputError(f"{node.used} busy of {node.chips}", file=file, field=f"{where}.nodes[{i}].used")
    for t, count in rack.chips.items():
        on_nodes = sum(n.chips for n in rack.nodes if n.chip_type == t)
        busy = sum(n.used for n in rack.nodes if n.chip_type == t)
        if on_nodes != count:
            raise InputError(f"its nodes hold {on_nodes} {t}, the rack {count}", file=file, field=f"{where}.nodes")
        if busy != rack.used.get(t, 0):
            raise InputError(f"its nodes have {busy} {t} busy, the rack {rack.used.get(t, 0)}", file=file,
                             field=f"{where}.nodes")


def load_fleet(path: str | None = None) -> Fleet:
    """A fleet file, or the built-in default fleet when `path` is None."""
    if path is None:
        return default_fleet()
    return parse_fleet(read_json(path), file=path)


def default_fleet() -> Fleet:
    text = resources.files("trnsched").joinpath("data").joinpath("default_fleet.json").read_text()
    return parse_fleet(json.loads(text), file="<default fleet>")
