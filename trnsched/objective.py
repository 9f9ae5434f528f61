"""The objective: what each candidate costs, what waiting costs over a horizon,
and the one place floats become CP-SAT integers.

Costs are a list indexed by `Candidate.index` (the position `prune_for` gave
it), computed once per solve and shared by every policy, the CP-SAT model and
the packing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from trnsched.candidates import Candidate, prune_for
from trnsched.inputs.jobs import Job

OBJECTIVES = ("energy", "cost", "time", "balanced")
OBJECTIVE_RESOLUTION = 1_000_000   # integer steps for the largest value scaled (see IntegerScale)


def candidate_costs(cands: Sequence[Candidate], objective: str) -> list[float]:
    """The objective's value of each candidate, by position, in its own units (kWh,
    USD, hours), or for `balanced` the mean of the three, each relative to the
    job's best."""
    if objective == "energy":
        return [c.energy_kwh for c in cands]
    if objective == "cost":
        return [c.cost_usd for c in cands]
    if objective == "time":
        return [c.duration_h for c in cands]
    best: dict[int, list[float]] = {}
    for c in cands:
        b = best.setdefault(c.job, [float("inf")] * 3)
        for i, v in enumerate((c.energy_kwh, c.cost_usd, c.duration_h)):
            b[i] = min(b[i], v)
    return [sum(v / max(b, 1e-12) for v, b in zip((c.energy_kwh, c.cost_usd, c.duration_h), best[c.job])) / 3.0
            for c in cands]


class Costs:
    """Each candidate's objective value, looked up by the candidate (its index; a
    candidate `prune_for` never numbered has none, and looking it up fails)."""

    __slots__ = ("objective", "values")

    def __init__(self, cands: Sequence[Candidate], objective: str) -> None:
        """`cands` numbered 0..n-1 in order, as `prune_for` returns them."""
        if any(c.index != i for i, c in enumerate(cands)):
            raise ValueError("candidates must be numbered by prune_for, in order")
        self.objective = objective
        self.values = candidate_costs(cands, objective)

    def __getitem__(self, c: Candidate) -> float:
        return self.values[c.index]

    def total(self, cands: Iterable[Candidate]) -> float:
        return sum(self.values[c.index] for c in cands)


@dataclass(frozen=True)
class Horizon:
    """Scheduling over time: jobs start within `hours`, and each hour a job waits
    or runs costs `lam` objective units per unit of priority.

    The objective is lexicographic like the instant one: placed priority first,
    then sum(cost of each placed job) + lam * sum(priority * (end_h - arrival_h)).
    """
    hours: float
    lam: float

    def latest_start(self, job: Job, c: Candidate) -> float:
        """The last start that begins within the horizon and ends by the deadline."""
        last = self.hours
        if job.deadline_h is not None:
            last = min(last, job.deadline_h - c.duration_h)
        return last

    def value(self, job: Job, c: Candidate, cost: float, start_h: float) -> float:
        """A job's share of the objective when it starts at `start_h` on `c`."""
        return cost + self.lam * job.priority * (start_h + c.duration_h - job.arrival_h)


def prune_and_price(cands: list[Candidate], objective: str) -> tuple[list[Candidate], Costs]:
    """The candidates worth keeping for this objective, numbered, and their costs."""
    kept = prune_for(cands, candidate_costs(cands, objective))
    return kept, Costs(kept, objective)


def completion_weight(jobs: Sequence[Job], cands: Sequence[Candidate], costs: Costs, horizon_h: float,
                      time_weight: float) -> float:
    """lam, in objective units per priority-hour: time_weight * (sum over jobs of
    their cheapest candidate's cost) / (sum of priorities * H).  With time_weight
    1, keeping every job waiting for the whole horizon costs as much as running
    all of them.  One scale, stated once, and `--time-weight` to move it."""
    cheapest: dict[int, float] = {}
    for c in cands:
        cheapest[c.job] = min(cheapest.get(c.job, math.inf), costs[c])
    priority = sum(jobs[j].priority for j in cheapest)
    if not cheapest or priority == 0:
        return 0.0
    scale = sum(cheapest.values()) or float(len(cheapest))
    return time_weight * scale / (priority * horizon_h)


@dataclass(frozen=True)
class IntegerScale:
    """The one place floats become CP-SAT integers.  CP-SAT has no floats, and
    large factors slow it sharply: the largest value maps to OBJECTIVE_RESOLUTION
    steps (1 ppm), every value is rounded to the nearest step, and a positive
    value never rounds to 0, so each integer is within one step of its value."""
    step: float

    @classmethod
    def fitting(cls, largest: float) -> "IntegerScale":
        return cls(largest / OBJECTIVE_RESOLUTION if largest > 0 else 1.0)

    def __call__(self, value: float) -> int:
        return max(1, round(value / self.step)) if value > 0 else 0
