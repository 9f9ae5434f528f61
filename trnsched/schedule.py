"""Scheduling over a horizon (`solve --horizon H`): when each job starts, as well as where.

Each placed job gets start_h >= arrival_h and end_h = start_h + the predicted
duration of its candidate (training: tokens over throughput; inference: the
service's duration_h).  Capacity per (rack, chip type) and rack power caps hold
at every instant, deadlines are hard (end_h <= deadline_h), and a job must start
within the horizon (start_h <= H) or it is unplaced with a reason.

The objective is lexicographic like the instant one: placed priority first,
then the chosen objective plus priority-weighted completion time,

    sum(cost of each placed job) + lam * sum(priority * (end_h - arrival_h)),

where lam (objective units per priority-hour) = time_weight * (sum over jobs of
their cheapest candidate's cost) / (sum of priorities * H): with time_weight 1,
keeping every job waiting for the whole horizon costs as much as running all of
them.  One scale, stated once, and `--time-weight` to move it.

Three policies, as for instant placement:
- `first_fit` and `greedy` are list schedulers on a `Timeline`: jobs by priority
  (then arrival), each at its earliest feasible start; first-fit takes the first
  candidate (fewest chips) that fits anywhere before its deadline, greedy the one
  whose cost plus weighted completion time is least.
- `cpsat` is solver.py's rack-group model with each (candidate, group) draw made
  an optional interval at the job's start; capacity, power and "one large job
  per rack" become cumulative constraints.  Time is counted in TIME_STEPS steps
  of the horizon; durations round up to whole steps (so the model never
  under-books a rack) and deadlines are checked on the exact duration.  The answer
  is packed onto racks over time by the Timeline, which checks every rack at
  every instant.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Callable

from ortools.sat.python import cp_model

from trnsched.candidates import Candidate
from trnsched.fleet import Fleet
from trnsched.jobs import Job
from trnsched.solver import (KEEP_PER_JOB, LARGE_MODEL, Allocation, Choice, Packer, _candidate_groups, _hint,
                             _hint_from, _priority, _read, _restrict, _solver, _structure, _Trace, _variables,
                             first_fit_order, rack_groups, rack_watts_per_chip, resource_use)

TIME_STEPS = 2000          # the CP-SAT model's time resolution: steps per horizon
# CP-SAT's deterministic clock runs ~5x slower against the wall on the interval
# model than on the instant one; this keeps one unit of `time_limit` near the same
# 1-3 s of wall time, under the wall-clock cap, so answers stay deterministic.
WORK_PER_UNIT = 0.2
LARGE_SCHEDULE = LARGE_MODEL // 4   # intervals cost more than sums: cut the model down sooner
EPS = 1e-9


# --- the time-aware objective -------------------------------------------------

def completion_weight(jobs: list[Job], cands: list[Candidate], cost_of: dict[int, float], horizon_h: float,
                      time_weight: float) -> float:
    """lam: objective units per priority-hour of completion time (see the module docstring)."""
    cheapest: dict[int, float] = {}
    for c in cands:
        cheapest[c.job] = min(cheapest.get(c.job, math.inf), cost_of[id(c)])
    priority = sum(jobs[j].priority for j in cheapest)
    if not cheapest or priority == 0:
        return 0.0
    scale = sum(cheapest.values()) or float(len(cheapest))
    return time_weight * scale / (priority * horizon_h)


def schedule_value(choice: Choice, jobs: list[Job], cost_of: dict[int, float], lam: float) -> float:
    return sum(cost_of[id(a.candidate)] + lam * jobs[j].priority * (a.start_h + a.candidate.duration_h
                                                                     - jobs[j].arrival_h)
               for j, a in choice.placed.items())


def latest_start(job: Job, c: Candidate, horizon_h: float) -> float:
    """The last start that begins within the horizon and ends by the deadline."""
    last = horizon_h
    if job.deadline_h is not None:
        last = min(last, job.deadline_h - c.duration_h)
    return last


# --- rack use over time ---------------------------------------------------------

class Timeline:
    """Jobs placed over time: per rack, (start, end, chip type, chips, watts) spans.
    A window's room on a rack is its free chips (and power headroom) less the peak
    the placed spans use anywhere inside the window, so whatever fits a window's
    room fits at every instant of it."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.rest = Packer(fleet)
        self.spans: list[list[tuple[float, float, str, int, int]]] = [[] for _ in fleet.racks]

    def window(self, t0: float, t1: float, racks=None) -> Packer:
        """Room on `racks` (default: all) over [t0, t1), as a Packer to allocate
        from (not to commit to: rows of racks outside `racks` are shared)."""
        room = copy.copy(self.rest)
        room.free, room.watts = list(self.rest.free), list(self.rest.watts)
        for r in range(len(self.spans)) if racks is None else racks:
            if not self.spans[r]:
                continue
            peak_chips, peak_watts = self._peak(r, t0, t1)
            room.free[r] = {t: n - peak_chips.get(t, 0) for t, n in room.free[r].items()}
            if room.watts[r] is not None:
                room.watts[r] -= peak_watts
        return room

    def _peak(self, r: int, t0: float, t1: float) -> tuple[dict[str, int], int]:
        """The most chips of each type, and watts, rack r's spans use at any one
        instant of [t0, t1); use only rises where a span starts, so those starts
        (and t0) are the instants to look at."""
        live = [s for s in self.spans[r] if s[0] < t1 - EPS and s[1] > t0 + EPS]
        peak_chips: dict[str, int] = {}
        peak_watts = 0
        for p in [t0] + [s[0] for s in live if s[0] > t0]:
            chips: dict[str, int] = {}
            watts = 0
            for s in live:
                if s[0] <= p + EPS and s[1] > p + EPS:
                    chips[s[2]] = chips.get(s[2], 0) + s[3]
                    watts += s[4]
            for t, n in chips.items():
                peak_chips[t] = max(peak_chips.get(t, 0), n)
            peak_watts = max(peak_watts, watts)
        return peak_chips, peak_watts

    def _starts(self, ready: float, last: float, racks) -> list[float]:
        """Room on these racks only grows when one of their spans ends, so the
        starts worth trying in [ready, last] are `ready` and those ends."""
        return [ready] + sorted({s[1] for r in racks for s in self.spans[r] if ready < s[1] <= last + EPS})

    def earliest(self, c: Candidate, ready: float, last: float) -> tuple[float, dict[int, int]] | None:
        """The earliest start in [ready, last] at which the candidate fits for its
        whole duration, and its racks."""
        if last < ready - EPS:
            return None
        for t in self._starts(ready, last, c.racks):
            alloc = self.window(t, t + c.duration_h, c.racks).allocate(c)
            if alloc is not None:
                return t, alloc
        return None

    def earliest_on(self, c: Candidate, alloc: dict[int, int], ready: float, last: float) -> float | None:
        """The earliest start in [ready, last] at which these racks hold the candidate."""
        if last < ready - EPS:
            return None
        watts = rack_watts_per_chip(c, self.fleet)
        for t in self._starts(ready, last, alloc):
            room = self.window(t, t + c.duration_h, alloc)
            if all(room.fits_rack(r, c, n, watts) for r, n in alloc.items()):
                return t
        return None

    def commit(self, c: Candidate, alloc: dict[int, int], start: float) -> None:
        end = start + c.duration_h
        watts = rack_watts_per_chip(c, self.fleet)
        for r, n in alloc.items():
            self.spans[r].append((start, end, c.chip_type, n, watts * n))

    def peak(self) -> list[dict[str, int]]:
        """Per rack, the most chips of each type placed at any one instant."""
        return [self._peak(r, -math.inf, math.inf)[0] if spans else {} for r, spans in enumerate(self.spans)]


def timeline_of(fleet: Fleet, choice: Choice) -> Timeline:
    line = Timeline(fleet)
    for a in choice.placed.values():
        line.commit(a.candidate, a.racks, a.start_h)
    return line


# --- list schedulers -------------------------------------------------------------

def _by_job(cands: list[Candidate]) -> dict[int, list[Candidate]]:
    out: dict[int, list[Candidate]] = {}
    for c in cands:
        out.setdefault(c.job, []).append(c)
    return out


def _list_schedule(jobs: list[Job], fleet: Fleet, cands: list[Candidate], horizon_h: float,
                   pick: Callable[[Job, list[tuple[Candidate, float, dict[int, int]]]], tuple | None],
                   order: Callable[[Candidate], tuple], line: Timeline | None = None,
                   only: list[int] | None = None) -> tuple[dict[int, Allocation], Timeline]:
    line = line or Timeline(fleet)
    by_job = _by_job(cands)
    placed: dict[int, Allocation] = {}
    todo = only if only is not None else range(len(jobs))
    for j in sorted(todo, key=lambda j: (-jobs[j].priority, jobs[j].arrival_h, j)):
        job = jobs[j]
        options = []
        for c in sorted(by_job.get(j, []), key=order):
            found = line.earliest(c, job.arrival_h, latest_start(job, c, horizon_h))
            if found is not None:
                options.append((c, *found))
        chosen = pick(job, options)
        if chosen is not None:
            c, start, alloc = chosen
            line.commit(c, alloc, start)
            placed[j] = Allocation(c, alloc, start)
    return placed, line


def first_fit(jobs: list[Job], fleet: Fleet, cands: list[Candidate], cost_of: dict[int, float],
              horizon_h: float, lam: float) -> Choice:
    """Jobs by priority; each takes the first candidate (fewest chips, chip types in
    fleet order) that fits before its deadline, at its earliest start."""
    start = time.perf_counter()
    placed, _ = _list_schedule(jobs, fleet, cands, horizon_h, lambda job, opts: opts[0] if opts else None,
                               first_fit_order(fleet))
    choice = Choice(placed, solve_time_s=time.perf_counter() - start)
    choice.objective_value = schedule_value(choice, jobs, cost_of, lam)
    return choice


def _cheapest(cost_of: dict[int, float], lam: float):
    def pick(job: Job, opts):
        if not opts:
            return None
        return min(opts, key=lambda o: (cost_of[id(o[0])] + lam * job.priority
                                        * (o[1] + o[0].duration_h - job.arrival_h), o[1], o[0].chips))
    return pick


def greedy(jobs: list[Job], fleet: Fleet, cands: list[Candidate], cost_of: dict[int, float],
           horizon_h: float, lam: float) -> Choice:
    """Jobs by priority; each takes the candidate and earliest start whose cost plus
    weighted completion time is least."""
    start = time.perf_counter()
    placed, _ = _list_schedule(jobs, fleet, cands, horizon_h, _cheapest(cost_of, lam),
                               lambda c: (cost_of[id(c)], c.chips))
    choice = Choice(placed, solve_time_s=time.perf_counter() - start)
    choice.objective_value = schedule_value(choice, jobs, cost_of, lam)
    return choice


# --- CP-SAT over time --------------------------------------------------------------

def cpsat(jobs: list[Job], fleet: Fleet, cands: list[Candidate], cost_of: dict[int, float], horizon_h: float,
          lam: float, *, time_limit: float = 10.0, workers: int = 2, seed: int = 0, trace: list | None = None,
          began: float | None = None) -> Choice:
    """The time-indexed CP-SAT model (module docstring): most placed priority, then
    cost plus weighted completion time, starting from the better list schedule."""
    start = time.perf_counter()
    began = start if began is None else began
    wall_cap = max(1.0, 4.0 * time_limit)
    time_limit *= WORK_PER_UNIT
    hint = min((greedy(jobs, fleet, cands, cost_of, horizon_h, lam),
                first_fit(jobs, fleet, cands, cost_of, horizon_h, lam)),
               key=lambda c: (-_priority(c, jobs), c.objective_value))
    unit = horizon_h / TIME_STEPS
    ready = [max(0, math.ceil(job.arrival_h / unit - EPS)) for job in jobs]

    def steps(c: Candidate) -> int:
        return max(1, math.ceil(c.duration_h / unit - EPS))

    def last_step(c: Candidate) -> int:
        return min(TIME_STEPS, math.floor(latest_start(jobs[c.job], c, horizon_h) / unit + EPS))

    cands = [c for c in cands if last_step(c) >= ready[c.job]]
    if not cands:
        hint.status = "OPTIMAL"
        return hint
    groups, of_rack = rack_groups(fleet, each_rack=True)
    cgroups = _candidate_groups(cands, of_rack)
    notes: list[str] = []
    restricted = sum(len(g) for g in cgroups) > LARGE_SCHEDULE
    if restricted:
        jobs_with = len({c.job for c in cands})
        keep = max(1, min(KEEP_PER_JOB, LARGE_SCHEDULE // (4 * max(jobs_with, 1))))
        cands, cgroups = _restrict(cands, cgroups, hint, groups, of_rack, cost_of, keep)
        notes.append(f"large instance: the model kept {len(cands)} candidates (at most {keep} per job beside the "
                     "baseline's)")

    model = cp_model.CpModel()
    v = _variables(model, cands, groups, cgroups)
    _structure(model, v, cands, groups, cgroups)
    job_ids = sorted({c.job for c in cands})
    begin = {j: model.new_int_var(ready[j], TIME_STEPS, f"start_{j}") for j in job_ids}
    for i, c in enumerate(cands):
        model.add(begin[c.job] <= last_step(c)).only_enforce_if(v.take[i])
    use = resource_use(v, cands, fleet, groups, cgroups)
    intervals: dict[tuple[int, int, int], object] = {}

    def interval(u, g: int):
        key = (u.candidate, g, id(u.present))
        if key not in intervals:
            c = cands[u.candidate]
            intervals[key] = model.new_optional_fixed_size_interval_var(begin[c.job], steps(c), u.present,
                                                                        f"run_{u.candidate}_{g}")
        return intervals[key]

    for (g, t), terms in use.chips.items():
        model.add_cumulative([interval(u, g) for u in terms], [u.amount for u in terms],
                             groups[g].free[t] * groups[g].size)
    for (g, t), terms in use.large.items():
        if len(terms) > groups[g].size:
            model.add_cumulative([interval(u, g) for u in terms], [1] * len(terms), groups[g].size)
    for g, terms in use.watts.items():
        model.add_cumulative([interval(u, g) for u in terms], [u.amount for u in terms],
                             max(0, groups[g].headroom) * groups[g].size)

    # Hint: the better list schedule, its starts rounded up to whole steps.
    of_pod = [r.pod for r in fleet.racks]
    _hint(model, v, cands, hint, of_rack, cgroups, of_pod)
    for j in job_ids:
        a = hint.placed.get(j)
        model.add_hint(begin[j], ready[j] if a is None else min(TIME_STEPS, max(ready[j],
                                                                              math.ceil(a.start_h / unit - EPS))))

    weights = [jobs[c.job].priority for c in cands]
    placed_priority = sum(w * x for w, x in zip(weights, v.take))
    model.maximize(placed_priority)
    phase1 = _solver(0.4 * time_limit, workers, seed, wall_cap=wall_cap)
    status1 = phase1.solve(model, _Trace(trace, 1, began, 1.0) if trace is not None else None)
    if status1 not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        hint.status = phase1.status_name(status1)
        hint.notes = ["CP-SAT found no schedule in time; the better list schedule is returned"]
        hint.solve_time_s = time.perf_counter() - start
        return hint
    best_priority = round(phase1.objective_value)
    if status1 != cp_model.OPTIMAL:
        notes.append(f"placed priority {best_priority} is not proven optimal (bound {phase1.best_objective_bound:.0f})")

    # Phase 2: cost plus weighted completion time, in integer steps (largest term
    # ~1e6 steps), with placed priority held.
    flow_per_step = {j: lam * jobs[j].priority * unit for j in job_ids}
    fixed = [cost_of[id(c)] + flow_per_step[c.job] * steps(c) for c in cands]
    top = max(max(fixed), max(f * TIME_STEPS for f in flow_per_step.values()))
    scale = top / 1_000_000 if top > 0 else 1.0
    k = [max(1, round(f / scale)) if f > 0 else 0 for f in fixed]
    w = {j: (max(1, round(f / scale)) if f > 0 else 0) for j, f in flow_per_step.items()}
    model.clear_hints()
    model.add(placed_priority >= best_priority)
    model.minimize(sum(ki * x for ki, x in zip(k, v.take)) + sum(w[j] * (begin[j] - ready[j]) for j in job_ids))
    _hint_from(model, v, phase1)          # complete: phase 2 starts from a schedule
    for j in job_ids:
        model.add_hint(begin[j], phase1.value(begin[j]))
    phase2 = _solver(max(0.2 * time_limit, time_limit - phase1.deterministic_time), workers, seed,
                     wall_cap=max(1.0, wall_cap - phase1.wall_time))
    status2 = phase2.solve(model, _Trace(trace, 2, began, scale) if trace is not None else None)
    solved = phase2 if status2 in (cp_model.OPTIMAL, cp_model.FEASIBLE) else phase1
    if solved is phase1:
        notes.append("the objective phase found no schedule in time; the schedule optimises priority only")
    chosen = _read(solved, v, cands, cgroups)
    starts = {j: solved.value(begin[j]) * unit for j in chosen}
    racks_of = {j: {groups[g].racks[0]: n for g, (n, _) in parts.items()} for j, (_, parts) in chosen.items()}
    placed, moved, dropped = _pack_over_time(chosen, starts, racks_of, jobs, fleet, cands, cost_of, horizon_h, lam)
    choice = Choice(placed)
    choice.objective_value = schedule_value(choice, jobs, cost_of, lam)
    if _priority(hint, jobs) >= _priority(choice, jobs) and hint.objective_value < choice.objective_value - EPS:
        choice = Choice(dict(hint.placed), objective_value=hint.objective_value)
        notes.append("the list schedule beat the solver's within the time limit and is returned")
    if moved:
        notes.append(f"{moved} job(s) started later than the rack-group model had them, to fit on single racks")
    if dropped:
        notes.append(f"{dropped} job(s) did not fit on racks as the rack-group model placed them and were "
                     "re-scheduled by the list scheduler")
    model_optimal = (solved is phase2 and status2 == cp_model.OPTIMAL and status1 == cp_model.OPTIMAL
                     and not (moved or dropped or restricted) and _priority(choice, jobs) >= best_priority)
    if solved is phase2:
        model_gap = abs(phase2.objective_value - phase2.best_objective_bound) / max(abs(phase2.objective_value), 1e-9)
        notes.append(f"time in steps of {unit * 60:.3g} min, durations rounded up to whole steps: the model's own "
                     f"gap is {model_gap:.2%}" + (" (solved to optimality)" if model_optimal else "")
                     + "; exact times may do a little better, so the status stays FEASIBLE and no bound is reported")
    # OPTIMAL would claim more than the time-stepped model can prove.
    status = "FEASIBLE"
    choice.status = status
    choice.solve_time_s = time.perf_counter() - start
    choice.notes = notes
    return choice


def _pack_over_time(chosen, starts: dict[int, float], racks_of: dict[int, dict[int, int]], jobs: list[Job],
                    fleet: Fleet, cands: list[Candidate], cost_of: dict[int, float], horizon_h: float, lam: float
                    ) -> tuple[dict[int, Allocation], int, int]:
    """Put the model's jobs on its racks at its starts, checked on the Timeline at
    exact times (the model is per rack, so this holds unless rounding to steps
    bites); a job that does not fit there takes its earliest start that fits, and
    one that fits nowhere in time is re-scheduled by the greedy list scheduler."""
    line = Timeline(fleet)
    placed: dict[int, Allocation] = {}
    moved = 0
    left: list[int] = []
    order = sorted(chosen, key=lambda j: (starts[j], not chosen[j][0].multi, -chosen[j][0].chips, j))
    for j in order:
        c, _ = chosen[j]
        job = jobs[j]
        t = max(job.arrival_h, starts[j])
        # Its own racks, as early as they have room: never later than the model's
        # start (jobs before it only moved earlier), often a little earlier, since
        # the model rounds durations up to whole steps.
        when = line.earliest_on(c, racks_of[j], job.arrival_h, t)
        if when is not None:
            line.commit(c, racks_of[j], when)
            placed[j] = Allocation(c, racks_of[j], when)
            continue
        found = line.earliest(c, t, latest_start(job, c, horizon_h))
        if found is None:
            left.append(j)
            continue
        when, alloc = found
        moved += when > t + EPS
        line.commit(c, alloc, when)
        placed[j] = Allocation(c, alloc, when)
    if left:
        more, _ = _list_schedule(jobs, fleet, cands, horizon_h, _cheapest(cost_of, lam),
                                 lambda c: (cost_of[id(c)], c.chips), line=line, only=left)
        placed.update(more)
    return placed, moved, len(left)
