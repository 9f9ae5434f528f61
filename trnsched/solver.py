"""Choosing candidates: the CP-SAT model and the first-fit and greedy baselines.

All three return the same `Choice` (candidate and allocation per placed job), so
their quality can be compared on one input.  The CP-SAT model follows the
OR-Tools layout: data, variables, constraints, objective, solve, read back.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
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
    start_h: float | None = None   # scheduled start (horizon mode); None = at arrival


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


def cost_map(cands: list[Candidate], objective: str) -> dict[int, float]:
    """Each candidate's objective value keyed by id(candidate): computed once per
    solve and shared by the baselines, the CP-SAT model and the packing."""
    return {id(c): v for c, v in zip(cands, candidate_costs(cands, objective))}


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
        for racks in c.by_pod:
            alloc: dict[int, int] = {}
            need = c.chips
            for r in sorted(racks, key=lambda r: -self.free[r].get(c.chip_type, 0)):
                if need == 0 or len(alloc) == c.max_racks:
                    break
                room = self.free[r].get(c.chip_type, 0)
                if self.watts[r] is not None and watts > 0:
                    room = min(room, self.watts[r] // watts)
                take = min(room, need)
                if take > 0:
                    alloc[r] = take
                    need -= take
            if need == 0:
                return alloc
        return None

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


def first_fit_order(fleet: Fleet) -> Callable[[Candidate], tuple]:
    """First-fit's candidate order, shared by every first-fit and fifo policy:
    fewest chips, chip types in fleet order, fewest racks."""
    rank = {t: i for i, t in enumerate(fleet.types_present())}
    return lambda c: (c.chips, rank[c.chip_type], c.max_racks)


def first_fit(jobs: list[Job], fleet: Fleet, cands: list[Candidate], cost_of: dict[int, float]) -> Choice:
    """Jobs by priority; each takes its first candidate (fewest chips, chip types in
    fleet order) that fits on the first racks with room."""
    order = first_fit_order(fleet)
    choice = _sequential(jobs, fleet, cands, lambda i, c: (*order(c), i))
    return _with_objective(choice, cost_of)


def greedy(jobs: list[Job], fleet: Fleet, cands: list[Candidate], cost_of: dict[int, float]) -> Choice:
    """Jobs by priority; each takes its best-scoring candidate (for the objective) that fits."""
    choice = _sequential(jobs, fleet, cands, lambda i, c: (cost_of[id(c)], c.chips, i))
    return _with_objective(choice, cost_of)


def _priority(choice: Choice, jobs: list[Job]) -> int:
    return sum(jobs[j].priority for j in choice.placed)


def _with_objective(choice: Choice, cost_of: dict[int, float]) -> Choice:
    choice.objective_value = sum(cost_of[id(a.candidate)] for a in choice.placed.values())
    return choice


# --- CP-SAT ------------------------------------------------------------------
#
# The model sees groups of identical racks (same pod, chips, busy chips and power
# cap), not racks: a candidate is on a group, or draws so many chips from so many
# racks of each group.  Capacity and power hold per group in total, plus "at most
# one more-than-half-a-rack job per rack"; that is a relaxation of per-rack
# packing, so its bound is a true bound.  The chosen candidates are then packed
# into the group's racks (largest first); when every one fits, the relaxation's
# optimum is the fleet's.  A group of one rack is exact, so small fleets of
# distinct racks are solved exactly.

@dataclass
class RackGroup:
    racks: list[int]
    free: dict[str, int]            # free chips per type, per rack
    headroom: int | None            # watts per rack
    pod: str

    @property
    def size(self) -> int:
        return len(self.racks)


def rack_groups(fleet: Fleet, *, each_rack: bool = False) -> tuple[list[RackGroup], list[int]]:
    """The fleet's groups of interchangeable racks, and each rack's group; with
    `each_rack`, every rack is its own group (the model is then exact per rack)."""
    headroom = rack_headroom_watts(fleet)
    groups, of_rack = [], [0] * len(fleet.racks)
    members_of = [[r] for r in range(len(fleet.racks))] if each_rack else fleet.groups()
    for g, members in enumerate(members_of):
        first = fleet.racks[members[0]]
        groups.append(RackGroup(members, {t: first.free(t) for t in first.chips}, headroom[members[0]], first.pod))
        for r in members:
            of_rack[r] = g
    return groups, of_rack


@dataclass
class _Vars:
    take: list                                   # per candidate: chosen
    on: dict[tuple[int, int], object]            # (candidate, group) -> single-rack candidate on this group
    chips: dict[tuple[int, int], object]         # (candidate, group) -> chips from this group (multi)
    racks: dict[tuple[int, int], object]         # (candidate, group) -> racks of this group used (multi)
    pod: dict[tuple[int, str], object]           # (candidate, pod) -> the multi-rack candidate's pod


def _candidate_groups(cands: list[Candidate], of_rack: list[int]) -> list[list[int]]:
    return [sorted({of_rack[r] for r in c.racks}) for c in cands]


def _variables(model: cp_model.CpModel, cands: list[Candidate], groups: list[RackGroup],
               cgroups: list[list[int]]) -> _Vars:
    v = _Vars([], {}, {}, {}, {})
    for i, c in enumerate(cands):
        v.take.append(model.new_bool_var(f"take_{i}"))
        if c.multi and len(c.pods) > 1:
            for p in c.pods:
                v.pod[i, p] = model.new_bool_var(f"pod_{i}_{p}")
        for g in cgroups[i]:
            if not c.multi:
                v.on[i, g] = model.new_bool_var(f"on_{i}_{g}")
            else:
                room = groups[g].free[c.chip_type]
                v.chips[i, g] = model.new_int_var(0, min(c.chips, room * groups[g].size), f"chips_{i}_{g}")
                v.racks[i, g] = model.new_int_var(0, min(c.max_racks, groups[g].size), f"racks_{i}_{g}")
    return v


def _constraints(model: cp_model.CpModel, v: _Vars, cands: list[Candidate], fleet: Fleet,
                 groups: list[RackGroup], cgroups: list[list[int]]) -> None:
    _structure(model, v, cands, groups, cgroups)
    use = resource_use(v, cands, fleet, groups, cgroups)
    for (g, t), terms in use.chips.items():
        model.add(sum(_amount(u) for u in terms) <= groups[g].free[t] * groups[g].size)
    for (g, t), terms in use.large.items():
        if len(terms) > groups[g].size:
            model.add(sum(u.present for u in terms) <= groups[g].size)   # two such jobs never share a rack
    for g, terms in use.watts.items():
        model.add(sum(_amount(u) for u in terms) <= max(0, groups[g].headroom) * groups[g].size)


def _structure(model: cp_model.CpModel, v: _Vars, cands: list[Candidate], groups: list[RackGroup],
               cgroups: list[list[int]]) -> None:
    """Each chosen candidate is on one group, or draws its chips from racks of one
    pod; each job has at most one candidate."""
    for i, c in enumerate(cands):
        if not c.multi:
            model.add(sum(v.on[i, g] for g in cgroups[i]) == v.take[i])
        else:
            model.add(sum(v.chips[i, g] for g in cgroups[i]) == c.chips * v.take[i])
            model.add(sum(v.racks[i, g] for g in cgroups[i]) <= c.max_racks * v.take[i])
            for g in cgroups[i]:
                model.add(v.chips[i, g] <= groups[g].free[c.chip_type] * v.racks[i, g])
            if len(c.pods) > 1:
                # All of the job's racks in one pod.
                model.add(sum(v.pod[i, p] for p in c.pods) == v.take[i])
                for g in cgroups[i]:
                    model.add(v.racks[i, g] <= groups[g].size * v.pod[i, groups[g].pod])
    by_job: dict[int, list] = {}
    for i, c in enumerate(cands):
        by_job.setdefault(c.job, []).append(v.take[i])
    for xs in by_job.values():
        model.add_at_most_one(xs)


@dataclass
class Use:
    """One candidate's draw on one rack group: present (a literal) with `amount`
    (an int when fixed, else a variable that is 0 when unused)."""
    candidate: int
    present: object
    amount: object
    fixed: bool


@dataclass
class ResourceUse:
    chips: dict[tuple[int, str], list[Use]]   # (group, chip type) -> chips drawn
    large: dict[tuple[int, str], list[Use]]   # (group, chip type) -> single-rack jobs over half a rack
    watts: dict[int, list[Use]]               # group -> watts drawn


def _amount(u: Use):
    return u.amount * u.present if u.fixed else u.amount


def resource_use(v: _Vars, cands: list[Candidate], fleet: Fleet, groups: list[RackGroup],
                 cgroups: list[list[int]]) -> ResourceUse:
    """What each candidate draws from each rack group: the one description of
    capacity that the instant model (sums) and the horizon model (cumulatives) share."""
    use = ResourceUse({}, {}, {})
    for i, c in enumerate(cands):
        watts = rack_watts_per_chip(c, fleet)
        for g in cgroups[i]:
            grp = groups[g]
            if not c.multi:
                chips = Use(i, v.on[i, g], c.chips, True)
                power = Use(i, v.on[i, g], watts * c.chips, True)
            else:
                chips = Use(i, v.take[i], v.chips[i, g], False)
                power = Use(i, v.take[i], watts * v.chips[i, g], False)
            use.chips.setdefault((g, c.chip_type), []).append(chips)
            if not c.multi and 2 * c.chips > grp.free[c.chip_type]:
                use.large.setdefault((g, c.chip_type), []).append(Use(i, v.on[i, g], 1, True))
            if grp.headroom is not None and watts > 0:
                use.watts.setdefault(g, []).append(power)
    return use


def _hint(model: cp_model.CpModel, v: _Vars, cands: list[Candidate], choice: Choice, of_rack: list[int],
          cgroups: list[list[int]], fleet_pods: list[str]) -> None:
    chosen = {id(a.candidate): a for a in choice.placed.values()}
    for i, c in enumerate(cands):
        a = chosen.get(id(c))
        model.add_hint(v.take[i], a is not None)
        per_group: dict[int, list[int]] = {}
        if a is not None:
            for r, n in a.racks.items():
                per_group.setdefault(of_rack[r], []).append(n)
        for g in cgroups[i]:
            if not c.multi:
                model.add_hint(v.on[i, g], g in per_group)
            else:
                model.add_hint(v.chips[i, g], sum(per_group.get(g, [])))
                model.add_hint(v.racks[i, g], len(per_group.get(g, [])))
        if c.multi and len(c.pods) > 1:
            used = {fleet_pods[r] for r in a.racks} if a is not None else set()
            for p in c.pods:
                model.add_hint(v.pod[i, p], p in used)


def _hint_from(model: cp_model.CpModel, v: _Vars, solver: cp_model.CpSolver) -> None:
    """Hint every variable with the value a previous solve gave it."""
    for x in v.take:
        model.add_hint(x, solver.boolean_value(x))
    for x in list(v.on.values()) + list(v.pod.values()):
        model.add_hint(x, solver.boolean_value(x))
    for x in list(v.chips.values()) + list(v.racks.values()):
        model.add_hint(x, solver.value(x))


def _read(solver: cp_model.CpSolver, v: _Vars, cands: list[Candidate],
          cgroups: list[list[int]]) -> dict[int, tuple[Candidate, dict[int, tuple[int, int]]]]:
    """Per placed job: its candidate and, per group, (chips, racks) drawn from it."""
    chosen = {}
    for i, c in enumerate(cands):
        if solver.boolean_value(v.take[i]):
            if not c.multi:
                parts = {g: (c.chips, 1) for g in cgroups[i] if solver.boolean_value(v.on[i, g])}
            else:
                parts = {g: (solver.value(v.chips[i, g]), solver.value(v.racks[i, g])) for g in cgroups[i]
                         if solver.value(v.chips[i, g]) > 0}
            chosen[c.job] = (c, parts)
    return chosen


def _pack(chosen, fleet: Fleet, groups: list[RackGroup], jobs: list[Job], cands: list[Candidate],
          cost_of: dict[int, float]) -> tuple[dict[int, Allocation], list[int]]:
    """Pack the group-level choice into racks: multi-rack jobs first, then single-rack
    jobs largest first, each on the first rack of its group with room for its chips
    and watts.  A job that does not fit is placed afterwards, greedily, if it can be."""
    packer = Packer(fleet)
    placed: dict[int, Allocation] = {}
    dropped: list[int] = []
    order = sorted(chosen, key=lambda j: (not chosen[j][0].multi, -chosen[j][0].chips, j))
    for j in order:
        c, parts = chosen[j]
        watts = rack_watts_per_chip(c, fleet)
        alloc: dict[int, int] = {}
        ok = True
        for g, (want, count) in sorted(parts.items()):
            racks = sorted(groups[g].racks, key=lambda r: -packer.free[r].get(c.chip_type, 0))
            for r in racks:
                if want == 0 or count == 0:
                    break
                room = packer.free[r].get(c.chip_type, 0)
                if packer.watts[r] is not None and watts > 0:
                    room = min(room, packer.watts[r] // watts)
                if not c.multi and room < c.chips:
                    continue
                take = min(room, want)
                if take > 0:
                    alloc[r] = take
                    want -= take
                    count -= 1
            ok &= want == 0
        if ok:
            packer.commit(c, alloc)
            placed[j] = Allocation(c, alloc)
        else:
            dropped.append(j)
    retry = set(dropped)
    options: dict[int, list[Candidate]] = {}
    for c in cands:
        if c.job in retry:
            options.setdefault(c.job, []).append(c)
    for j in sorted(dropped, key=lambda j: (-jobs[j].priority, j)):
        for c in sorted(options.get(j, []), key=lambda c: cost_of[id(c)]):
            alloc = packer.allocate(c)
            if alloc is not None:
                packer.commit(c, alloc)
                placed[j] = Allocation(c, alloc)
                break
    return placed, dropped


# Above this many (candidate, rack group) pairs the model is cut down: presolve
# alone on the full model outlasts a time limit of seconds (1,000 jobs on 16k
# chips make ~230,000 pairs).
LARGE_MODEL = 40_000
BIG_MODEL = 20_000       # ... and above this many, CP-SAT runs without presolve (see cpsat)
KEEP_PER_JOB = 4
KEEP_GROUPS = 4


def _restrict(cands: list[Candidate], cgroups: list[list[int]], hint: Choice, groups: list[RackGroup],
              of_rack: list[int], cost_of: dict[int, float], per_job: int) -> tuple[list[Candidate], list[list[int]]]:
    """For large instances: per job, the baseline's candidate plus the cheapest and
    the smallest others; per candidate, the baseline's rack groups plus the roomiest."""
    costs = [cost_of[id(c)] for c in cands]
    in_hint = {id(a.candidate): a for a in hint.placed.values()}
    by_job: dict[int, list[int]] = {}
    for i, c in enumerate(cands):
        by_job.setdefault(c.job, []).append(i)
    keep: list[int] = []
    for idx in by_job.values():
        chosen = [i for i in idx if id(cands[i]) in in_hint]
        cheap = sorted(idx, key=lambda i: (costs[i], cands[i].chips))
        small = sorted(idx, key=lambda i: (cands[i].chips, costs[i]))
        picked: list[int] = []
        for i in chosen + [x for pair in zip(cheap, small) for x in pair]:
            if i not in picked:
                picked.append(i)
            if len(picked) >= per_job + len(chosen):
                break
        keep.extend(sorted(picked))
    out_c, out_g = [], []
    for i in keep:
        c = cands[i]
        a = in_hint.get(id(c))
        used = {of_rack[r] for r in a.racks} if a is not None else set()
        roomy = sorted(cgroups[i], key=lambda g: -groups[g].free.get(c.chip_type, 0) * groups[g].size)
        pick = sorted(used | set(roomy[:KEEP_GROUPS]))
        out_c.append(c)
        out_g.append(pick)
    return out_c, out_g


class _Trace(cp_model.CpSolverSolutionCallback):
    """Records (seconds since the solve began, phase, objective, bound) per solution."""

    def __init__(self, sink: list, phase: int, began: float, step: float) -> None:
        super().__init__()
        self.sink, self.phase, self.began, self.step = sink, phase, began, step

    def on_solution_callback(self) -> None:
        scale = 1.0 if self.phase == 1 else self.step
        self.sink.append((time.perf_counter() - self.began, self.phase, self.objective_value * scale,
                          self.best_objective_bound * scale))


def _solver(time_limit: float, workers: int, seed: int, wall_cap: float | None = None) -> cp_model.CpSolver:
    """Deterministic: the limit is CP-SAT's deterministic time (about a second of
    work each), with interleaved workers, so the same inputs and settings give the
    same answer on a busy or an idle machine.  A wall-clock cap backs it up."""
    s = cp_model.CpSolver()
    s.parameters.max_deterministic_time = max(0.05, time_limit)
    s.parameters.max_time_in_seconds = max(1.0, 4.0 * time_limit) if wall_cap is None else wall_cap
    s.parameters.num_workers = workers
    s.parameters.random_seed = seed
    s.parameters.interleave_search = True
    return s


def cpsat(jobs: list[Job], fleet: Fleet, cands: list[Candidate], cost_of: dict[int, float], *,
          time_limit: float = 10.0, workers: int = 2, seed: int = 0, trace: list | None = None,
          began: float | None = None) -> Choice:
    """Lexicographic: first the priority-weighted number of placed jobs (solved to
    optimality when time allows), then the objective with that number held.
    `trace`, if given, receives (seconds since `began`, phase, objective, bound)
    for every solution CP-SAT finds."""
    start = time.perf_counter()
    began = start if began is None else began
    # Start from the better baseline: more placed priority first, then the objective.
    hint = min((greedy(jobs, fleet, cands, cost_of), first_fit(jobs, fleet, cands, cost_of)),
               key=lambda c: (-_priority(c, jobs), c.objective_value))
    if not cands:
        return Choice({}, status="OPTIMAL", objective_value=0.0, best_bound=0.0, gap=0.0,
                      solve_time_s=time.perf_counter() - start)
    groups, of_rack = rack_groups(fleet)
    pods = [r.pod for r in fleet.racks]
    cgroups = _candidate_groups(cands, of_rack)
    every_candidate = cands
    restricted = sum(len(g) for g in cgroups) > LARGE_MODEL
    if restricted:
        jobs_with = len({c.job for c in cands})
        keep = max(1, min(KEEP_PER_JOB, LARGE_MODEL // (KEEP_GROUPS * max(jobs_with, 1))))
        cands, cgroups = _restrict(cands, cgroups, hint, groups, of_rack, cost_of, keep)
    costs, step = scale_costs([cost_of[id(c)] for c in cands])
    weights = [jobs[c.job].priority for c in cands]

    # Phase 1: placed priority.
    model = cp_model.CpModel()
    v = _variables(model, cands, groups, cgroups)
    _constraints(model, v, cands, fleet, groups, cgroups)
    placed_priority = sum(w * x for w, x in zip(weights, v.take))
    model.maximize(placed_priority)
    _hint(model, v, cands, hint, of_rack, cgroups, pods)
    share = 0.4
    # Above BIG_MODEL pairs presolve alone can outlast the limit; a short pass
    # without it gives CP-SAT an answer of its own within seconds, phase 1 starts
    # from it, and it stands if phase 1 finds nothing better in time.
    big = restricted or sum(len(g) for g in cgroups) > BIG_MODEL
    quick = None
    if big:
        quick = _solver(0.1 * time_limit, workers, seed)
        quick.parameters.cp_model_presolve = False
        quick_status = quick.solve(model, _Trace(trace, 1, began, step) if trace is not None else None)
        if quick_status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            model.clear_hints()
            _hint_from(model, v, quick)
        else:
            quick = None
        share = 0.3
    phase1 = _solver(share * time_limit, workers, seed)
    status1 = phase1.solve(model, _Trace(trace, 1, began, step) if trace is not None else None)
    notes: list[str] = []
    if status1 not in (cp_model.OPTIMAL, cp_model.FEASIBLE) and quick is not None:
        phase1, status1 = quick, quick_status
    if status1 not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        hint.status = phase1.status_name(status1)
        hint.notes = ["CP-SAT found no solution in time; the better baseline answer is returned"]
        hint.solve_time_s = time.perf_counter() - start
        return hint
    best_priority = round(phase1.objective_value)
    if status1 != cp_model.OPTIMAL:
        notes.append(f"placed priority {best_priority} is not proven optimal "
                     f"(bound {phase1.best_objective_bound:.0f})")

    # Phase 2: the objective, with placed priority held at its best, starting from
    # the baseline answer when it places as much.
    model.clear_hints()
    model.add(placed_priority >= best_priority)
    model.minimize(sum(k * x for k, x in zip(costs, v.take)))
    start_from = hint if _priority(hint, jobs) >= best_priority else None
    if start_from is not None:
        _hint(model, v, cands, start_from, of_rack, cgroups, pods)
    else:
        _hint_from(model, v, phase1)      # complete: phase 2 starts from a solution
    # On big models phase 2 on the whole model finds little or nothing in its time
    # (measured at 300 to 5,000 jobs); the search below, on small exact models,
    # takes its place.
    phase2, status2 = phase1, status1
    if not big:
        phase2 = _solver(max(0.2 * time_limit, time_limit - phase1.deterministic_time), workers, seed)
        status2 = phase2.solve(model, _Trace(trace, 2, began, step) if trace is not None else None)
    phase2_ok = not big and status2 in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    solved = phase2 if phase2_ok else phase1
    if not phase2_ok and not big:
        notes.append("the objective phase found no solution in time; placements optimise priority only")
    placed, dropped = _pack(_read(solved, v, cands, cgroups), fleet, groups, jobs, cands, cost_of)
    choice = _with_objective(Choice(placed), cost_of)
    if start_from is not None and _priority(start_from, jobs) >= _priority(choice, jobs) \
            and start_from.objective_value < choice.objective_value:
        choice = _with_objective(Choice(dict(start_from.placed)), cost_of)
        notes.append("the baseline answer beat the solver's within the time limit and is returned")
    if dropped:
        notes.append(f"{len(dropped)} job(s) did not pack into racks as the group-level model placed them "
                     "and were re-placed greedily")
    if big:
        used = (quick.deterministic_time if quick is not None else 0.0) + phase1.deterministic_time
        before = (_priority(choice, jobs), choice.objective_value)
        work = max(0.5 * time_limit, time_limit - used)
        # The search ends in a local optimum that depends on where it starts: from
        # the baseline too, when it places as much, and the better answer stands.
        starts = [choice] + ([start_from] if start_from is not None and start_from.placed != choice.placed else [])
        searched = [improve(jobs, fleet, every_candidate, cost_of, s, work=work / len(starts), workers=workers,
                            seed=seed) for s in starts]
        choice, rounds = min(searched, key=lambda cr: (-_priority(cr[0], jobs), cr[0].objective_value))
        if (_priority(choice, jobs), choice.objective_value) != before:
            notes.append(f"neighbourhood search ({sum(r for _, r in searched)} rounds on small exact models, from "
                         f"{len(starts)} starting point(s)) took the answer from priority {before[0]}, objective "
                         f"{before[1]:,.2f} to priority {_priority(choice, jobs)}, objective "
                         f"{choice.objective_value:,.2f}")
    # Exact objective of the placements; a bound that stays a bound despite rounding
    # (each candidate's integer cost is within one step of its real cost).
    status = phase2.status_name(status2) if phase2_ok else "FEASIBLE"
    if status == "OPTIMAL" and (status1 != cp_model.OPTIMAL or dropped or _priority(choice, jobs) < best_priority):
        status = "FEASIBLE"
    bound = None
    if phase2_ok:
        bound = min(choice.objective_value,
                    max(0.0, (phase2.best_objective_bound - len({c.job for c in cands})) * step))
    if _priority(choice, jobs) < best_priority or (bound is not None and bound > choice.objective_value):
        bound = None      # a bound for a higher placed priority than this answer's
    if restricted:
        notes.append(f"large instance: the model kept {len(cands)} candidates (at most {keep} per job "
                     f"beside the baseline's) on at most {KEEP_GROUPS} rack groups each, so its bound is "
                     "not a bound for the whole problem and is not reported")
        bound = None
        if status == "OPTIMAL":
            status = "FEASIBLE"
    choice.status = status
    choice.best_bound = bound
    choice.gap = None if bound is None else ((choice.objective_value - bound) / choice.objective_value
                                             if choice.objective_value > 0 else 0.0)
    choice.solve_time_s = time.perf_counter() - start
    choice.notes = notes
    return choice


# --- sub-problems: some jobs, on what the others leave ----------------------------

@dataclass
class SubProblem:
    """Some of the jobs, renumbered 0..k-1, with copies of their candidates (the
    solvers index jobs by position) and the maps between copies and originals."""
    jobs: list[Job]
    cands: list[Candidate]
    cost_of: dict[int, float]
    original: dict[int, Candidate]      # id(copy) -> original
    local: dict[int, Candidate]         # id(original) -> copy

    @classmethod
    def of(cls, jobs: list[Job], picked: list[int], by_job: dict[int, list[Candidate]],
           cost_of: dict[int, float]) -> "SubProblem":
        sub = cls([jobs[j] for j in picked], [], {}, {}, {})
        for k, j in enumerate(picked):
            for c in by_job[j]:
                copy = replace(c, job=k)
                sub.cands.append(copy)
                sub.cost_of[id(copy)] = cost_of[id(c)]
                sub.original[id(copy)] = c
                sub.local[id(c)] = copy
        return sub


# --- large-neighbourhood search --------------------------------------------------
#
# On big instances CP-SAT's whole-fleet model improves slowly, while greedy
# leaves much on the table (each job, in priority order, takes its cheapest
# candidate that still fits, stranding later jobs on expensive ones).  The search
# frees a few dozen jobs at a time -- those whose cheapest candidate is on one
# chip type but who run elsewhere, the jobs holding that type, and unplaced jobs
# that could use it -- and re-places them exactly (per-rack model, everything
# else held fixed), keeping the result when it places more priority, or as much
# for less.  Chip types take turns; each round's neighbourhood is chosen without
# randomness, so the answer is deterministic.

NEIGHBOURHOOD = 12      # jobs of each kind per round
MAX_DEPTH = 4           # after a round finds nothing, the next for that type looks this much further down


def improve(jobs: list[Job], fleet: Fleet, cands: list[Candidate], cost_of: dict[int, float], choice: Choice,
            *, work: float, workers: int = 2, seed: int = 0) -> tuple[Choice, int]:
    """Improve `choice` within `work` deterministic seconds; returns it and the rounds run."""
    by_job: dict[int, list[Candidate]] = {}
    for c in cands:
        by_job.setdefault(c.job, []).append(c)
    cheapest = {j: min(cs, key=lambda c: cost_of[id(c)]) for j, cs in by_job.items()}
    placed = dict(choice.placed)
    types = fleet.types_present()
    depth = {t: 0 for t in types}       # per type: how many slices down the lists (0 after a success)
    spent, rounds, idle = 0.0, 0, 0
    per_round = max(0.05, min(0.5, work / 20))
    while spent + per_round <= work + 1e-9 and idle < len(types) * MAX_DEPTH:
        t = types[rounds % len(types)]
        rounds += 1
        take = slice(depth[t] * NEIGHBOURHOOD, (depth[t] + 1) * NEIGHBOURHOOD)

        def regret(j: int) -> float:
            return cost_of[id(placed[j].candidate)] - cost_of[id(cheapest[j])]

        def move_loss(j: int) -> float:
            """What moving off this type costs the job at the least."""
            other = [cost_of[id(c)] for c in by_job[j] if c.chip_type != t]
            return (min(other) if other else math.inf) - cost_of[id(placed[j].candidate)]

        unhappy = sorted((j for j in placed if cheapest[j].chip_type == t and regret(j) > 1e-9),
                         key=lambda j: (-regret(j), j))[take]
        holders = sorted((j for j in placed if placed[j].candidate.chip_type == t and j not in unhappy),
                         key=lambda j: (move_loss(j), j))[:NEIGHBOURHOOD]
        waiting = sorted((j for j in by_job if j not in placed and any(c.chip_type == t for c in by_job[j])),
                         key=lambda j: (-jobs[j].priority, cost_of[id(cheapest[j])], j))[take]
        free = unhappy + holders + waiting
        if not unhappy and not waiting:
            depth[t] = MAX_DEPTH            # nothing further down either
            idle += 1
            continue
        kept: dict[int, dict[str, int]] = {}
        kept_watts: dict[int, float] = {}
        for j, a in placed.items():
            if j not in free:
                per_chip = rack_watts_per_chip(a.candidate, fleet)
                for r, n in a.racks.items():
                    kept.setdefault(r, {})
                    kept[r][a.candidate.chip_type] = kept[r].get(a.candidate.chip_type, 0) + n
                    kept_watts[r] = kept_watts.get(r, 0.0) + per_chip * n
        rest = fleet.with_busy(kept, kept_watts)
        sub = SubProblem.of(jobs, free, by_job, cost_of)
        current = Choice({k: Allocation(sub.local[id(placed[j].candidate)], placed[j].racks)
                          for k, j in enumerate(free) if j in placed})
        current.objective_value = sum(sub.cost_of[id(a.candidate)] for a in current.placed.values())
        found = _exact(sub.jobs, rest, sub.cands, sub.cost_of, current, per_round, workers, seed)
        spent += found.solve_time_s
        gain = _priority(found, sub.jobs) - _priority(current, sub.jobs)
        if gain > 0 or (gain == 0 and found.objective_value < current.objective_value
                        - 1e-9 * max(1.0, current.objective_value)):
            for j in free:
                placed.pop(j, None)
            for k, a in found.placed.items():
                placed[free[k]] = Allocation(sub.original[id(a.candidate)], a.racks)
            depth[t], idle = 0, 0
        else:
            depth[t] = min(depth[t] + 1, MAX_DEPTH)
            idle += 1
    out = _with_objective(Choice(placed), cost_of)
    out.status, out.notes = choice.status, choice.notes
    return out, rounds


def _exact(jobs: list[Job], fleet: Fleet, cands: list[Candidate], cost_of: dict[int, float], start: Choice,
           work: float, workers: int, seed: int) -> Choice:
    """The sub-problem on a per-rack model: most priority, then least cost,
    starting from `start`; solve_time_s holds the deterministic time spent."""
    groups, of_rack = rack_groups(fleet, each_rack=True)
    # Only racks with room: most are full with the jobs held fixed, and a model
    # over them all is mostly zeros.
    cgroups = [[g for g in gs if groups[g].free.get(c.chip_type, 0) >= (1 if c.multi else c.chips)]
               for c, gs in zip(cands, _candidate_groups(cands, of_rack))]
    usable = [i for i, c in enumerate(cands)
              if cgroups[i] and (not c.multi or sum(groups[g].free[c.chip_type] for g in cgroups[i]) >= c.chips)]
    cands, cgroups = [cands[i] for i in usable], [cgroups[i] for i in usable]
    if not cands:
        return Choice({}, objective_value=0.0)
    pods = [r.pod for r in fleet.racks]
    costs, _ = scale_costs([cost_of[id(c)] for c in cands])
    big = max(costs, default=1) * (len({c.job for c in cands}) + 1)
    model = cp_model.CpModel()
    v = _variables(model, cands, groups, cgroups)
    _constraints(model, v, cands, fleet, groups, cgroups)
    # One objective: any priority outweighs all costs.
    model.minimize(sum((k - big * jobs[c.job].priority) * x for k, c, x in zip(costs, cands, v.take)))
    _hint(model, v, cands, start, of_rack, cgroups, pods)
    solver = _solver(work, workers, seed)
    solver.parameters.cp_model_presolve = False    # small models, short limits: search from the hint at once
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Choice({}, objective_value=math.inf, solve_time_s=solver.deterministic_time)
    placed = {}
    for c, (cand, parts) in _read(solver, v, cands, cgroups).items():
        placed[c] = Allocation(cand, {groups[g].racks[0]: n for g, (n, _) in parts.items()})
    found = _with_objective(Choice(placed), cost_of)
    found.solve_time_s = solver.deterministic_time
    return found
