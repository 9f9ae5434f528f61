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

Above LAGRANGIAN_ITEMS items the same programme is solved through its
Lagrangian dual (`Lagrangian`, `cutting_planes`): any multipliers give a valid
bound, so a search cut short by the clock still reports one.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ortools.linear_solver import pywraplp

from trnsched.interrupts import INTERRUPTS
from trnsched.policies.cpsat.clock import Clock
from trnsched.problem import Problem
from trnsched.racks import headroom_watts, watts_per_chip


# Above this many items the Lagrangian dual (cutting planes) replaces GLOP on
# the whole programme: at 5,000 jobs (33,000 items) 0.1 s against 1.7 s, at
# 100,000 (633,000 items) 0.8 s against 97 s for the priority bound, equal to
# GLOP's optima within 1e-5 relative on the generated instances.
LAGRANGIAN_ITEMS = 20_000
INTERRUPT_GRACE_S = 1.0     # for the bounds of an interrupted answer


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
        # A split counts its larger pool only: a looser relaxation, still a relaxation.
        u = max(c.units, key=lambda u: u.chips)
        seen.setdefault((c.job, u.chip_type), set()).add((u.chips, watts_per_chip(u, fleet) * u.chips, costs[c]))
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


class Lagrangian:
    """The same relaxation through its Lagrangian dual, for instances whose
    linear programme GLOP cannot finish in time (100,000 jobs: 633,000 items,
    97 s for the priority bound alone).  Few rows couple the jobs -- chips per
    chip type, watts per power group and, for the objective, the priority row --
    so pricing them with multipliers leaves one independent choice per job,
    made in one vectorised pass over the items.  Any multipliers >= 0 give a
    valid bound (weak duality), so the search may stop at any time; cutting
    planes over the multipliers tighten it, and at their optimum it equals the
    linear programme's (strong duality)."""

    def __init__(self, problem: Problem, chosen: list[Item]) -> None:
        order = sorted(range(len(chosen)), key=lambda i: chosen[i].job)
        its = [chosen[i] for i in order]
        jobs = np.array([it.job for it in its])
        self.starts = np.flatnonzero(np.r_[True, jobs[1:] != jobs[:-1]])   # each job's first item
        self.job_of = np.repeat(np.arange(len(self.starts)), np.diff(np.r_[self.starts, len(its)]))
        self.prio = np.array([problem.jobs[it.job].priority for it in its], dtype=float)
        self.cost = np.array([it.cost for it in its], dtype=float)
        totals = problem.fleet.totals()
        types = sorted(totals)
        kind = {t: k for k, t in enumerate(types)}
        free = np.array([max(totals[t]["free"], 0) for t in types], dtype=float)
        groups = power_groups(problem)
        group_of = np.full(len(types), -1)
        for g, (members, _) in enumerate(groups):
            for t in members:
                group_of[kind[t]] = g
        room = np.array([max(r, 0) for _, r in groups], dtype=float)
        t_idx = np.array([kind[it.chip_type] for it in its])
        # One row per chip type and per power group, each scaled by its right-hand
        # side (an empty one by 1), so that the multipliers share one scale.
        self.rows = len(types) + len(groups)
        self.rhs = np.r_[free, room]
        scale = np.where(self.rhs > 0, self.rhs, 1.0)
        self.use = np.zeros((len(its), self.rows))
        self.use[np.arange(len(its)), t_idx] = np.array([it.chips for it in its]) / scale[t_idx]
        g_idx = group_of[t_idx]
        capped = g_idx >= 0
        watts = np.array([it.watts for it in its], dtype=float)
        self.use[np.flatnonzero(capped), len(types) + g_idx[capped]] = watts[capped] / scale[len(types) + g_idx[capped]]
        self.rhs = self.rhs / scale
        positive = np.where(self.use > 0, self.use, np.inf)
        self.use_min = np.where(np.isfinite(positive.min(axis=0, initial=np.inf)), positive.min(axis=0, initial=np.inf), 0.0)

    def _pick(self, value: np.ndarray, best_is_max: bool) -> tuple[float, np.ndarray]:
        """Per job, its best item by `value` if that beats leaving the job out (0):
        the sum, and which items were picked."""
        reduce = np.maximum.reduceat if best_is_max else np.minimum.reduceat
        per_job = reduce(value, self.starts)
        keep = per_job > 0 if best_is_max else per_job < 0
        # The item that attains its job's best (the first, on ties).
        job_of = self.job_of
        hit = (value == per_job[job_of]) & keep[job_of]
        first = np.zeros(len(value), dtype=bool)
        idx = np.flatnonzero(hit)
        _, first_of_job = np.unique(job_of[idx], return_index=True)
        first[idx[first_of_job]] = True
        return float(per_job[keep].sum()), first

    def most_priority(self, seconds: float | None) -> float:
        """An upper bound on the relaxation's most placeable priority."""
        # Past top priority / a row's least use, its price rules out every item
        # that uses it, so the optimum lies within these caps.
        top = float(self.prio.max(initial=0.0))
        cap = np.where(self.use_min > 0, top / np.where(self.use_min > 0, self.use_min, 1.0), 0.0)

        def evaluate(mult: np.ndarray) -> tuple[float, np.ndarray]:
            picked_sum, picked = self._pick(self.prio - self.use @ mult, True)
            return picked_sum + float(mult @ self.rhs), self.rhs - self.use[picked].sum(axis=0)

        return cutting_planes(evaluate, cap, minimise=True, seconds=seconds)

    def least_cost(self, at_priority: float, seconds: float | None) -> float:
        """A lower bound on the relaxation's least cost placing at least `at_priority`."""
        # Costs in units of the largest and priority in units of `at_priority`:
        # numbers of order one keep the planes' small programme well conditioned
        # (in raw units GLOP gave up on it after 49 planes).
        unit = float(self.cost.max(initial=0.0)) or 1.0
        need = max(float(at_priority), 1.0)
        cost, prio = self.cost / unit, self.prio / need
        # Starting boxes only: where the optimum needs more (the priority row and
        # a full chip type both binding), cutting_planes widens them.
        ratio = float((cost / prio).max(initial=0.0))
        cap_rows = np.where(self.use_min > 0, ratio * float(prio.max(initial=0.0))
                            / np.where(self.use_min > 0, self.use_min, 1.0), 0.0)
        # Rows a tiny use prices (a power group's watts) start far out, which left
        # the planes' programme so ill-conditioned that GLOP gave up 3.6% short (a
        # generated 300-job instance): start each within 100x the priority row's
        # box; the box widens where the optimum needs more.
        cap = np.r_[ratio, np.minimum(cap_rows, 100.0 * ratio)]
        asked = at_priority / need

        def evaluate(m: np.ndarray) -> tuple[float, np.ndarray]:
            lam, mult = m[0], m[1:]
            picked_sum, picked = self._pick(cost - lam * prio + self.use @ mult, False)
            value = picked_sum + lam * asked - float(mult @ self.rhs)
            return value, np.r_[asked - float(prio[picked].sum()), self.use[picked].sum(axis=0) - self.rhs]

        return unit * cutting_planes(evaluate, cap, minimise=False, seconds=seconds)


def cutting_planes(evaluate, cap: np.ndarray, *, minimise: bool, seconds: float | None,
                   iterations: int = 300, tolerance: float = 1e-6) -> float:
    """Kelley's cutting planes for a Lagrangian dual over multipliers >= 0:
    each evaluation gives the dual's value and a subgradient, and the next point
    is the optimum of the planes so far (a small linear programme) within a box
    that starts at `cap` and widens wherever that optimum sits on its edge.
    Returns the best value evaluated, which is a valid bound whenever the
    search stops."""
    cap = np.array(cap, dtype=float)
    planes: list[tuple[float, np.ndarray]] = []      # (value - grad . point, grad)

    def programme():
        """The planes' small programme, built afresh (GLOP can give up on a long
        chain of warm starts -- ABNORMAL after 70 planes on a generated 300-job
        instance -- and solve the same rows from scratch)."""
        lp = pywraplp.Solver.CreateSolver("GLOP")
        m = [lp.NumVar(0.0, float(c), f"m{k}") for k, c in enumerate(cap)]
        z = lp.NumVar(-lp.infinity(), lp.infinity(), "z")
        lp.Objective().SetCoefficient(z, 1.0)
        if minimise:
            lp.Objective().SetMinimization()
        else:
            lp.Objective().SetMaximization()
        for offset, grad in planes:
            add_plane(lp, m, z, offset, grad)
        return lp, m, z

    def add_plane(lp, m, z, offset: float, grad: np.ndarray) -> None:
        # The plane through (point, value) with slope grad: z >= it (minimise), z <= it.
        row = lp.Constraint(offset, lp.infinity()) if minimise else lp.Constraint(-lp.infinity(), offset)
        row.SetCoefficient(z, 1.0)
        for k, x in enumerate(m):
            row.SetCoefficient(x, -float(grad[k]))

    lp, m, z = programme()
    point = np.zeros(len(cap))
    best = math.inf if minimise else -math.inf
    started = time.perf_counter()
    for _ in range(iterations):
        value, grad = evaluate(point)
        best = min(best, value) if minimise else max(best, value)
        planes.append((value - float(grad @ point), grad))
        add_plane(lp, m, z, *planes[-1])
        if lp.Solve() != pywraplp.Solver.OPTIMAL:
            lp, m, z = programme()
            if lp.Solve() != pywraplp.Solver.OPTIMAL:
                break
        if seconds is not None and time.perf_counter() - started > seconds:
            break
        point = np.array([x.solution_value() for x in m])
        if abs(best - lp.Objective().Value()) <= tolerance * max(1.0, abs(best)):
            # The optimum within the box; only where it sits on the box's edge
            # could a wider box do better.  (Widening earlier, while few planes
            # leave the optimum at a corner, ran the box to 1e8 and GLOP into
            # trouble.)  GLOP puts a vertex on the box within its tolerance.
            on_edge = (cap > 0) & (point >= cap * (1.0 - 1e-6))
            if not on_edge.any():
                break
            cap[on_edge] *= 4.0
            for k in np.flatnonzero(on_edge):
                m[k].SetUb(float(cap[k]))
    return best


def whole_bounds(problem: Problem, at_priority: int, clock: Clock, work: float) -> WholeBounds:
    """Bounds on placeable priority and, among placements placing at least
    `at_priority`, on the objective, from the relaxation's linear programme (its
    optimum bounds the relaxation's, which bounds the problem's): GLOP's optimum
    on small programmes, the Lagrangian dual's best value on large ones.
    Against the wall clock, a GLOP bound not finished within `work` seconds (and
    before the deadline) is None, and the dual stops where it is.  In
    deterministic mode both run to the end (the dual to its iteration limit),
    with no time limit: a bound that appears or not with the machine's load
    would make the answer depend on it."""
    started = time.perf_counter()

    def seconds() -> float | None:
        """What is left of `work` (building included) and of the deadline; after
        an interrupt, a short grace, so that the answer kept (--on-interrupt
        best) still carries its bounds."""
        if clock.deterministic:
            return None
        if INTERRUPTS.requested:
            return INTERRUPT_GRACE_S - (time.perf_counter() - started)
        return min(work - (time.perf_counter() - started), clock.left())

    chosen = items(problem)
    if not chosen:
        return WholeBounds(0, 0.0, at_priority)
    solver = Lagrangian(problem, chosen) if len(chosen) > LAGRANGIAN_ITEMS else Relaxation(problem, chosen)
    # The priority bound first: it is the cheaper solve and the one the gap needs most.
    left = seconds()
    most = solver.most_priority(left) if left is None or left > 0.01 else None
    # Margins for the solvers' tolerances: a bound must never cut off an answer.
    priority = None if most is None else max(at_priority, math.floor(most + 1e-6))
    left = seconds()
    least = solver.least_cost(at_priority, left) if left is None or left > 0.01 else None
    objective = None if least is None else max(0.0, least * (1.0 - 1e-7) - 1e-9)
    return WholeBounds(priority, objective, at_priority)
