"""Which nodes each placed job runs on: the one place exports turn a result's
rack allocations into node names.

A result says "job J: 40 chips of gb200 on rack nvl-0"; a cluster needs "pods
on nodes nvl-0-n00..nvl-0-n09, 4 GPUs each".  Nodes are filled in the fleet's
order, emptiest first, whole nodes before partial ones, accounting for the
chips already busy on each node and for the jobs pinned before (in the
result's order), so two jobs never claim the same chips.  A rack listed
without nodes (a hand-written fleet) stands for one node named after it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from trnsched.inputs.errors import InputError
from trnsched.inputs.fleet import Fleet, Node, Rack


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
    than its nodes have free, is an InputError naming the job."""
    racks = {r.id: r for r in fleet.racks}
    free = {(r.id, n.name): n.chips - n.used for r in fleet.racks for n in nodes_of(r)}
    placements = list(result.get("placements", []))
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
    """`want` chips of `chip_type` from the rack's nodes: whole free nodes
    first (fewest nodes, no neighbours to share with), then the fullest partial
    ones (leaving whole nodes whole for the next job)."""
    nodes = [n for n in nodes_of(rack) if n.chip_type == chip_type and free[(rack.id, n.name)] > 0]
    nodes.sort(key=lambda n: (free[(rack.id, n.name)] != n.chips, -free[(rack.id, n.name)]))
    whole = [n for n in nodes if free[(rack.id, n.name)] == n.chips]
    slots = []
    for n in whole + [n for n in nodes if n not in whole]:
        if want == 0:
            break
        if free[(rack.id, n.name)] > want and any(free[(rack.id, m.name)] == want for m in nodes if m is not n):
            continue            # a node with exactly the rest free fits better than splitting this one
        take = min(want, free[(rack.id, n.name)])
        free[(rack.id, n.name)] -= take
        want -= take
        slots.append(Slot(rack, n.name, take))
    if want:
        raise InputError(f"rack {rack.id} has {want} {chip_type} fewer free than the result places there: was "
                         f"the result solved on this fleet?", job=job, field="allocations")
    return slots
