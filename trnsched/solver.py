"""Choosing candidates: the CP-SAT model and the first-fit and greedy baselines.

All three return the same `Choice` (candidate and allocation per placed job), so
their quality can be compared on one input.  The CP-SAT model follows the
OR-Tools layout: data, variables, constraints, objective, solve, read back.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ortools.sat.python import cp_model

from trnsched.candidates import Candidate
from trnsched.fleet import Fleet
from trnsched.jobs import Job

OBJECTIVES = ("energy", "cost", "time", "balanced")
POLICIES = ("cpsat", "greedy", "first-fit")
OBJECTIVE_RESOLUTION = 1_000_000   # integer steps for the largest candidate cost (see scale_costs)


@dataclass
class Allocation:
    candidate: Candidate
    racks: dict[int, int]      # rack index -> chips


@dataclass
class Choice:
    placed: dict[int, Allocation]            # job index -> allocation
    status: str = "FEASIBLE"
    objective_value: float | None = None
    best_bound: float | None = None
    gap: float | None = None
    solve_time_s: float = 0.0
    notes: list[str] = field(default_factory=list)


# --- costs -------------------------------------------------------------------

def candidate_costs(cands: list[Candidate], objective: str) -> list[float]:
    """The objective's value of each candidate, in its own units (kWh, USD, hours),
    or for `balanced` the mean of the three, each relative to the job's best."""
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


def scale_costs(costs: list[float]) -> tuple[list[int], float]:
    """The one place floats become CP-SAT integers: the largest cost maps to
    OBJECTIVE_RESOLUTION steps (1 ppm), every cost is rounded to the nearest step,
    and a positive cost never rounds to 0.  Returns the integers and the step."""
    top = max(costs, default=0.0)
    step = top / OBJECTIVE_RESOLUTION if top > 0 else 1.0
    return [max(1, round(c / step)) if c > 0 else 0 for c in costs], step


def rack_watts_per_chip(c: Candidate, fleet: Fleet) -> int:
    """IT watts one chip of this candidate adds over its idle draw (rack caps are
    IT power: PUE excluded; the idle draw is already in the rack's baseline)."""
    chip = fleet.chip_types[c.chip_type]
    per_chip_kw = c.values["power_kw"] / c.chips / fleet.pue
    return max(0, round(per_chip_kw * 1000.0 - chip.idle_w))


def rack_headroom_watts(fleet: Fleet) -> list[int | None]:
    return [None if r.power_cap_kw is None else int(r.power_cap_kw * 1000.0 - fleet.baseline_kw(r) * 1000.0)
            for r in fleet.racks]


# --- packing state shared by the baselines and the checker --------------------

class Packer:
    """Free chips per (rack, type) and power headroom per rack, updated as jobs are placed."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.free = [{t: r.free(t) for t in r.chips} for r in fleet.racks]
        self.watts = rack_headroom_watts(fleet)

    def fits_rack(self, r: int, c: Candidate, chips: int, watts: int) -> bool:
        if self.free[r].get(c.chip_type, 0) < chips:
            return False
        return self.watts[r] is None or self.watts[r] >= watts * chips

    def allocate(self, c: Candidate) -> dict[int, int] | None:
        """First racks (in fleet order) that take the candidate, or None."""
        watts = rack_watts_per_chip(c, self.fleet)
        if not c.multi:
            for r in c.racks:
                if self.fits_rack(r, c, c.chips, watts):
                    return {r: c.chips}
            return None
        alloc: dict[int, int] = {}
        need = c.chips
        order = sorted(c.racks, key=lambda r: -self.free[r].get(c.chip_type, 0))
        for r in order:
            if need == 0 or len(alloc) == c.max_racks:
                break
            room = self.free[r].get(c.chip_type, 0)
            if self.watts[r] is not None and watts > 0:
                room = min(room, self.watts[r] // watts)
            take = min(room, need)
            if take > 0:
                alloc[r] = take
                need -= take
        return alloc if need == 0 else None

    def commit(self, c: Candidate, alloc: dict[int, int]) -> None:
        watts = rack_watts_per_chip(c, self.fleet)
        for r, n in alloc.items():
            self.free[r][c.chip_type] -= n
            if self.watts[r] is not None:
                self.watts[r] -= watts * n


# --- baselines ---------------------------------------------------------------

def _job_order(jobs: list[Job]) -> list[int]:
    return sorted(range(len(jobs)), key=lambda j: (-jobs[j].priority, j))


def _sequential(jobs: list[Job], fleet: Fleet, cands: list[Candidate],
                order_key: Callable[[int, Candidate], tuple]) -> Choice:
    start = time.perf_counter()
    by_job: dict[int, list[tuple[int, Candidate]]] = {}
    for i, c in enumerate(cands):
        by_job.setdefault(c.job, []).append((i, c))
    packer = Packer(fleet)
    placed: dict[int, Allocation] = {}
    for j in _job_order(jobs):
        for i, c in sorted(by_job.get(j, []), key=lambda ic: order_key(*ic)):
            alloc = packer.allocate(c)
            if alloc is not None:
                packer.commit(c, alloc)
                placed[j] = Allocation(c, alloc)
                break
    return Choice(placed, solve_time_s=time.perf_counter() - start)


def first_fit(jobs: list[Job], fleet: Fleet, cands: list[Candidate], objective: str) -> Choice:
    """Jobs by priority; each takes its first candidate (fewest chips, chip types in
    fleet order) that fits on the first racks with room."""
    type_rank = {t: i for i, t in enumerate(fleet.types_present())}
    choice = _sequential(jobs, fleet, cands, lambda i, c: (c.chips, type_rank[c.chip_type], c.max_racks, i))
    return _with_objective(choice, cands, objective)


def greedy(jobs: list[Job], fleet: Fleet, cands: list[Candidate], objective: str) -> Choice:
    """Jobs by priority; each takes its best-scoring candidate (for the objective) that fits."""
    costs = candidate_costs(cands, objective)
    index = {id(c): i for i, c in enumerate(cands)}
    choice = _sequential(jobs, fleet, cands, lambda i, c: (costs[index[id(c)]], c.chips, i))
    return _with_objective(choice, cands, objective)


def _priority(choice: Choice, jobs: list[Job]) -> int:
    return sum(jobs[j].priority for j in choice.placed)


def _with_objective(choice: Choice, cands: list[Candidate], objective: str) -> Choice:
    costs = candidate_costs(cands, objective)
    index = {id(c): i for i, c in enumerate(cands)}
    choice.objective_value = sum(costs[index[id(a.candidate)]] for a in choice.placed.values())
    return choice


# --- CP-SAT ------------------------------------------------------------------

@dataclass
class _Vars:
    take: list                                   # per candidate: chosen
    single: dict[tuple[int, int], object]        # (candidate, rack) -> on this rack
    chips: dict[tuple[int, int], object]         # (candidate, rack) -> chips from this rack (multi)
    uses: dict[tuple[int, int], object]          # (candidate, rack) -> draws from this rack (multi)


def _variables(model: cp_model.CpModel, cands: list[Candidate], fleet: Fleet) -> _Vars:
    v = _Vars([], {}, {}, {})
    for i, c in enumerate(cands):
        x = model.new_bool_var(f"take_{i}")
        v.take.append(x)
        if not c.multi:
            for r in c.racks:
                v.single[i, r] = model.new_bool_var(f"on_{i}_{r}")
        else:
            for r in c.racks:
                free = fleet.racks[r].free(c.chip_type)
                v.chips[i, r] = model.new_int_var(0, min(free, c.chips), f"chips_{i}_{r}")
                v.uses[i, r] = model.new_bool_var(f"uses_{i}_{r}")
    return v


def _constraints(model: cp_model.CpModel, v: _Vars, cands: list[Candidate], fleet: Fleet) -> None:
    # Each chosen candidate sits somewhere: one rack, or at most max_racks racks of its pod.
    for i, c in enumerate(cands):
        if not c.multi:
            model.add(sum(v.single[i, r] for r in c.racks) == v.take[i])
        else:
            model.add(sum(v.chips[i, r] for r in c.racks) == c.chips * v.take[i])
            model.add(sum(v.uses[i, r] for r in c.racks) <= c.max_racks)
            for r in c.racks:
                model.add(v.chips[i, r] <= fleet.racks[r].free(c.chip_type) * v.uses[i, r])
                model.add_implication(v.uses[i, r], v.take[i])
    # At most one candidate per job.
    by_job: dict[int, list] = {}
    for i, c in enumerate(cands):
        by_job.setdefault(c.job, []).append(v.take[i])
    for xs in by_job.values():
        model.add_at_most_one(xs)
    # Capacity per (rack, chip type) and power per rack.
    load: dict[tuple[int, str], list] = {}
    power: dict[int, list] = {}
    for i, c in enumerate(cands):
        watts = rack_watts_per_chip(c, fleet)
        terms = ([(r, c.chips * v.single[i, r]) for r in c.racks] if not c.multi
                 else [(r, v.chips[i, r]) for r in c.racks])
        for r, chips in terms:
            load.setdefault((r, c.chip_type), []).append(chips)
            if fleet.racks[r].power_cap_kw is not None and watts > 0:
                power.setdefault(r, []).append(watts * chips)
    for (r, t), terms in load.items():
        model.add(sum(terms) <= fleet.racks[r].free(t))
    headroom = rack_headroom_watts(fleet)
    for r, terms in power.items():
        model.add(sum(terms) <= max(0, headroom[r]))


def _hint(model: cp_model.CpModel, v: _Vars, cands: list[Candidate], choice: Choice) -> None:
    chosen = {id(a.candidate): a for a in choice.placed.values()}
    for i, c in enumerate(cands):
        a = chosen.get(id(c))
        model.add_hint(v.take[i], a is not None)
        for r in c.racks:
            n = a.racks.get(r, 0) if a is not None else 0
            if not c.multi:
                model.add_hint(v.single[i, r], n > 0)
            else:
                model.add_hint(v.chips[i, r], n)
                model.add_hint(v.uses[i, r], n > 0)


def _solver(time_limit: float, workers: int, seed: int) -> cp_model.CpSolver:
    """Deterministic: the limit is CP-SAT's deterministic time (about a second of
    work each), with interleaved workers, so the same inputs and settings give the
    same answer on a busy or an idle machine.  A wall-clock cap backs it up."""
    s = cp_model.CpSolver()
    s.parameters.max_deterministic_time = max(0.05, time_limit)
    s.parameters.max_time_in_seconds = max(1.0, 4.0 * time_limit)
    s.parameters.num_workers = workers
    s.parameters.random_seed = seed
    s.parameters.interleave_search = True
    return s


def _read(solver: cp_model.CpSolver, v: _Vars, cands: list[Candidate]) -> dict[int, Allocation]:
    placed = {}
    for i, c in enumerate(cands):
        if solver.boolean_value(v.take[i]):
            if not c.multi:
                racks = {r: c.chips for r in c.racks if solver.boolean_value(v.single[i, r])}
            else:
                racks = {r: solver.value(v.chips[i, r]) for r in c.racks if solver.value(v.chips[i, r]) > 0}
            placed[c.job] = Allocation(c, racks)
    return placed


def cpsat(jobs: list[Job], fleet: Fleet, cands: list[Candidate], objective: str, *,
          time_limit: float = 10.0, workers: int = 2, seed: int = 0) -> Choice:
    """Lexicographic: first the priority-weighted number of placed jobs (solved to
    optimality when time allows), then the objective with that number held."""
    start = time.perf_counter()
    hint = greedy(jobs, fleet, cands, objective)
    if not cands:
        return Choice({}, status="OPTIMAL", objective_value=0.0, best_bound=0.0, gap=0.0,
                      solve_time_s=time.perf_counter() - start)
    costs, step = scale_costs(candidate_costs(cands, objective))
    weights = [jobs[c.job].priority for c in cands]

    # Phase 1: placed priority.
    model = cp_model.CpModel()
    v = _variables(model, cands, fleet)
    _constraints(model, v, cands, fleet)
    placed_priority = sum(w * x for w, x in zip(weights, v.take))
    model.maximize(placed_priority)
    _hint(model, v, cands, hint)
    phase1 = _solver(0.4 * time_limit, workers, seed)
    status1 = phase1.solve(model)
    notes = []
    if status1 not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Choice(hint.placed, status=phase1.status_name(status1), solve_time_s=time.perf_counter() - start,
                      notes=["CP-SAT found no solution in time; the greedy answer is returned"],
                      objective_value=hint.objective_value)
    best_priority = round(phase1.objective_value)
    if status1 != cp_model.OPTIMAL:
        notes.append(f"placed priority {best_priority} is not proven optimal "
                     f"(bound {phase1.best_objective_bound:.0f})")
    first = _with_objective(Choice(_read(phase1, v, cands)), cands, objective)

    # Phase 2: the objective, with placed priority held at its best, starting from
    # the better of phase 1's answer and greedy's (when greedy places as much).
    start_from = first
    if _priority(hint, jobs) >= best_priority and hint.objective_value < first.objective_value:
        start_from = hint
    model.clear_hints()
    model.add(placed_priority >= best_priority)
    model.minimize(sum(k * x for k, x in zip(costs, v.take)))
    _hint(model, v, cands, start_from)
    phase2 = _solver(max(0.2 * time_limit, time_limit - phase1.deterministic_time), workers, seed)
    status2 = phase2.solve(model)
    if status2 not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        start_from.status = "FEASIBLE"
        start_from.notes = notes + ["the objective phase found no solution in time; this is its starting point"]
        start_from.solve_time_s = time.perf_counter() - start
        return start_from
    chosen = _read(phase2, v, cands)
    if status2 != cp_model.OPTIMAL:
        # Never hand back worse than the answer CP-SAT was started from.
        mine = _with_objective(Choice(dict(chosen)), cands, objective).objective_value
        if start_from.objective_value < mine:
            chosen = dict(start_from.placed)
    # Report the exact objective of the placements, and a bound that stays a bound
    # despite rounding: each chosen candidate's integer cost is within one step.
    index = {id(c): i for i, c in enumerate(cands)}
    real = candidate_costs(cands, objective)
    value = sum(real[index[id(a.candidate)]] for a in chosen.values())
    bound = max(0.0, (phase2.best_objective_bound - len({c.job for c in cands})) * step)
    bound = min(bound, value)
    status = phase2.status_name(status2)
    if status1 != cp_model.OPTIMAL and status == "OPTIMAL":
        status = "FEASIBLE"      # optimal for the priority found, which is not proven best
    return Choice(chosen, status=status, objective_value=value, best_bound=bound,
                  gap=(value - bound) / value if value > 0 else 0.0,
                  solve_time_s=time.perf_counter() - start, notes=notes)
