"""Bounds for the whole problem from an aggregated relaxation, for the paths
whose own model cannot give them (a cut-down model, or no objective phase).

The relaxation keeps, per job, at most one of its candidates, and, per chip
type, no more chips than the fleet has free; per group of chip types joined by
hybrid racks whose racks are all capped, no more watts than their headroom.
It forgets which rack and pod each job lands on.  Every placement the real
problem allows satisfies these constraints, so:

- the relaxation's most placeable priority bounds the priority any placement
  can reach;
- its least objective among selections placing at least P priority bounds the
  objective of every placement placing at least P.

Candidates that another of the same job and chip type dominates (no more
chips, watts or cost) are dropped first: neither the integer nor the linear
optimum moves.
The bounds are the optima of its linear programme: on the generated 1,000-job
instance it bounds priority at 2,124 like the integer programme and the
objective within 0.3% of it (992,347 vs 994,760 kWh), in 0.2 s, where CP-SAT
needed seconds and at 5,000 jobs proved nothing in 10.  How tight the
relaxation is depends on how much packing matters: see docs/SOLVER.md.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ortools.linear_solver import pywraplp

from trnsched.policies.cpsat.clock import Clock
from trnsched.problem import Problem
from trnsched.racks import headroom_watts, watts_per_chip


@dataclass(frozen=True)
class Item:
    job: int
    chip_type: str
    chips: int
    watts: int
    cost: float


@dataclass
class WholeBounds:
    priority: int | None          # no placement places more priority
    objective: float | None       # no placement placing at least `at_priority` costs less
    at_priority: int


def items(problem: Problem) -> list[Item]:
    """The candidates the relaxation can tell apart, less the dominated ones."""
    fleet, costs = problem.fleet, problem.costs
    seen: dict[tuple[int, str], set[tuple[int, int, float]]] = {}
    for c in problem.candidates:
        seen.setdefault((c.job, c.chip_type), set()).add((c.chips, watts_per_chip(c, fleet) * c.chips, costs[c]))
    out: list[Item] = []
    for (j, t), shapes in seen.items():
        kept: list[tuple[int, int, float]] = []
        for n, w, k in sorted(shapes):
            if not any(n2 <= n and w2 <= w and k2 <= k for n2, w2, k2 in kept):
                kept.append((n, w, k))
        out.extend(Item(j, t, n, w, k) for n, w, k in kept)
    return out


def power_groups(problem: Problem) -> list[tuple[set[str], int]]:
    """Chip types joined by hybrid racks, with the watts their racks have left,
    where every rack with free chips of those types is capped (elsewhere power
    does not bound the relaxation)."""
    fleet = problem.fleet
    headroom = headroom_watts(fleet)
    parent: dict[str, str] = {}

    def root(t: str) -> str:
        while parent[t] != t:
            t = parent[t]
        return t

    racks = [(i, [t for t in r.chips if r.free(t) > 0]) for i, r in enumerate(fleet.racks)]
    for _, types in racks:
        for t in types:
            parent.setdefault(t, t)
        for t in types[1:]:
            parent[root(t)] = root(types[0])
    groups: dict[str, tuple[set[str], list[int]]] = {}
    for i, types in racks:
        if types:
            entry = groups.setdefault(root(types[0]), (set(), []))
            entry[0].update(types)
            entry[1].append(i)
    return [(types, sum(max(0, headroom[i]) for i in members)) for types, members in groups.values()
            if all(headroom[i] is not None for i in members)]


class Relaxation:
    """The relaxation's linear programme (GLOP): one column per item in [0, 1]."""

    def __init__(self, problem: Problem, chosen: list[Item]) -> None:
        self.problem, self.chosen = problem, chosen
        self.lp = pywraplp.Solver.CreateSolver("GLOP")
        self.x = [self.lp.NumVar(0.0, 1.0, f"x{i}") for i in range(len(chosen))]
        per_job: dict[int, object] = {}
        chips = {t: self.lp.Constraint(-self.lp.infinity(), row["free"]) for t, row in problem.fleet.totals().items()}
        watts = [(types, self.lp.Constraint(-self.lp.infinity(), room)) for types, room in power_groups(problem)]
        for it, x in zip(chosen, self.x):
            if it.job not in per_job:
                per_job[it.job] = self.lp.Constraint(-self.lp.infinity(), 1.0)
            per_job[it.job].SetCoefficient(x, 1.0)
            chips[it.chip_type].SetCoefficient(x, it.chips)
            for types, row in watts:
                if it.chip_type in types and it.watts > 0:
                    row.SetCoefficient(x, it.watts)

    def priority_row(self, at_least: float):
        row = self.lp.Constraint(at_least, self.lp.infinity())
        for it, x in zip(self.chosen, self.x):
            row.SetCoefficient(x, self.problem.jobs[it.job].priority)
        return row

    def most_priority(self, seconds: float | None) -> float | None:
        objective = self.lp.Objective()
        for it, x in zip(self.chosen, self.x):
            objective.SetCoefficient(x, self.problem.jobs[it.job].priority)
        objective.SetMaximization()
        return self._solve(seconds)

    def least_cost(self, at_priority: int, seconds: float | None) -> float | None:
        self.priority_row(at_priority)
        objective = self.lp.Objective()
        objective.Clear()
        for it, x in zip(self.chosen, self.x):
            objective.SetCoefficient(x, it.cost)
        objective.SetMinimization()
        return self._solve(seconds)

    def _solve(self, seconds: float | None) -> float | None:
        """The optimum, or None if GLOP did not prove one within `seconds` (wall
        time; None: no limit)."""
        if seconds is not None:
            self.lp.SetTimeLimit(max(1, int(seconds * 1000)))
        return self.lp.Objective().Value() if self.lp.Solve() == pywraplp.Solver.OPTIMAL else None


def whole_bounds(problem: Problem, at_priority: int, clock: Clock, work: float) -> WholeBounds:
    """Bounds on placeable priority and, among placements placing at least
    `at_priority`, on the objective, from the relaxation's linear programme (its
    optimum bounds the relaxation's, which bounds the problem's).  GLOP solves it
    to optimality in a fraction of a second at 1,000 jobs and a few at 5,000.
    Against the wall clock, a bound it cannot finish within `work` seconds (and
    before the deadline) is None.  In deterministic mode GLOP runs to the end,
    with no time limit: its limit is wall time, and a bound that appears or not
    with the machine's load would make the answer depend on it."""
    started = time.perf_counter()

    def seconds() -> float | None:
        """What is left of `work` (building included) and of the deadline."""
        if clock.deterministic:
            return None
        return min(work - (time.perf_counter() - started), clock.left())

    chosen = items(problem)
    if not chosen:
        return WholeBounds(0, 0.0, at_priority)
    relaxation = Relaxation(problem, chosen)
    # The priority bound first: it is the cheaper solve and the one the gap needs most.
    left = seconds()
    most = relaxation.most_priority(left) if left is None or left > 0.01 else None
    # Margins for the solver's tolerances: a bound must never cut off an answer.
    priority = None if most is None else max(at_priority, math.floor(most + 1e-6))
    left = seconds()
    least = relaxation.least_cost(at_priority, left) if left is None or left > 0.01 else None
    objective = None if least is None else max(0.0, least * (1.0 - 1e-7) - 1e-9)
    return WholeBounds(priority, objective, at_priority)
