"""Which nodes each placed job runs on: the one place exports turn a result's
rack allocations into node names.

A result says "job J: 40 chips of gb200 on rack nvl-0"; a cluster needs "pods
on nodes nvl-0-n00..nvl-0-n09, 4 GPUs each".  A rack's nodes are filled best
fit (`_fill`), accounting for the chips already busy on each node and for the
jobs pinned before (by start, then in the result's order; over a horizon a
job's chips come free at its end), so two jobs never claim the same chips.  A rack listed
without nodes (a hand-written fleet) stands for one node named after it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from trnsched.inputs.errors import InputError
from trnsched.inputs.fleet import Fleet, Node, Rack
from trnsched.result import workloads


@dataclass(frozen=True)
class Slot:
    """Chips of one job on one node."""
    rack: Rack
    node: str
    chips: int


@dataclass(frozen=True)
class Pinned:
    """A placed job as a cluster sees it: its result entry and its slots."""
    placement: Mapping[str, Any]
    chip_type: str
    slots: tuple[Slot, ...]

    @property
    def job(self) -> str:
        return self.placement["job"]

    @property
    def racks(self) -> list[Rack]:
        seen: dict[str, Rack] = {}
        for s in self.slots:
            seen.setdefault(s.rack.id, s.rack)
        return list(seen.values())

    @property
    def pod(self) -> str:
        return self.slots[0].rack.pod

    def groups(self) -> list[tuple[int, list[Slot]]]:
        """Slots by chips per node, most first: one pod template (a Kubernetes
        replicated job, a Slurm het-job component) per group."""
        by_size: dict[int, list[Slot]] = {}
        for s in self.slots:
            by_size.setdefault(s.chips, []).append(s)
        return sorted(by_size.items(), key=lambda kv: -kv[0])


def nodes_of(rack: Rack) -> tuple[Node, ...]:
    """The rack's nodes, or one standing for the whole rack per chip type."""
    if rack.nodes:
        return rack.nodes
    return tuple(Node(rack.id if len(rack.chips) == 1 else f"{rack.id}-{t}", t, n, rack.used.get(t, 0))
                 for t, n in rack.chips.items())


def pin(result: Mapping[str, Any], fleet: Fleet) -> list[Pinned]:
    """Every placement of `result` pinned to nodes of `fleet`, in result order.
    Over a horizon, a job's chips come free at its end for the jobs that start
    after it (placements are pinned in order of start, then of the result).
    The result must have come from this fleet: an unknown rack, or more chips
    than its nodes have free, is an InputError naming the job.  A disaggregated
    placement becomes one workload per pool, `<job>-prefill` and `<job>-decode`
    (each pool is a serving deployment of its own; the pair share the job's
    `trnsched.io/job` and find each other by it)."""
    racks = {r.id: r for r in fleet.racks}
    free = {(r.id, n.name): n.chips - n.used for r in fleet.racks for n in nodes_of(r)}
    placements = [w for p in result.get("placements", []) for w in workloads(p)]
    order = sorted(range(len(placements)), key=lambda i: (float(placements[i].get("start_h") or 0.0), i))
    running: list[tuple[float, list[Slot]]] = []
    pinned: dict[int, Pinned] = {}
    for i in order:
        placement = placements[i]
        job, chip_type = placement["job"], placement["chip_type"]
        start = float(placement.get("start_h") or 0.0)
        for ended in [r for r in running if r[0] <= start + 1e-9]:
            running.remove(ended)
            for s in ended[1]:
                free[(s.rack.id, s.node)] += s.chips
        slots: list[Slot] = []
        for alloc in placement["allocations"]:
            rack = racks.get(alloc["rack"])
            if rack is None:
                raise InputError(f"rack {alloc['rack']!r} is not in the fleet {fleet.name!r}: export with the "
                                 f"fleet the result was solved on (--fleet)", job=job, field="allocations")
            slots += _fill(rack, chip_type, alloc["chips"], free, job)
        end = placement.get("end_h")
        running.append((float(end) if end is not None else float("inf"), slots))
        pinned[i] = Pinned(placement, chip_type, tuple(slots))
    return [pinned[i] for i in range(len(placements))]


def _fill(rack: Rack, chip_type: str, want: int, free: dict[tuple[str, str], int], job: str) -> list[Slot]:
    """`want` chips of `chip_type` from the rack's nodes, best fit: while no
    node has room for the rest, take the one with the most free (a whole node
    before a partial one); then the node whose free chips fit the rest most
    tightly.  Few nodes per job, and whole nodes stay whole for the next."""
    nodes = [n for n in nodes_of(rack) if n.chip_type == chip_type]
    slots = []
    while want > 0:
        room = [(free[(rack.id, n.name)], i, n) for i, n in enumerate(nodes) if free[(rack.id, n.name)] > 0]
        if not room:
            raise InputError(f"rack {rack.id} has {want} {chip_type} fewer free than the result places there: was "
                             f"the result solved on this fleet?", job=job, field="allocations")
        fits = [r for r in room if r[0] >= want]
        chosen = min(fits, key=lambda r: (r[0], r[1])) if fits else max(room, key=lambda r: (r[0], -r[1]))
        take = min(want, chosen[0])
        free[(rack.id, chosen[2].name)] -= take
        want -= take
        slots.append(Slot(rack, chosen[2].name, take))
    return slots


def unique_name(name: str, taken: set[str], limit: int = 63) -> str:
    """`name`, or `name-2`, `name-3`... if taken (file and object names of
    several jobs whose ids differ only in characters a cluster does not take)."""
    candidate, i = name[:limit], 1
    while candidate in taken:
        i += 1
        candidate = f"{name[:limit - 1 - len(str(i))]}-{i}"
    taken.add(candidate)
    return candidate
