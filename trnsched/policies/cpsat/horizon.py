"""Scheduling over a horizon: the per-rack model with each (candidate, rack) draw
an optional interval at the job's start.

Capacity, power and "one large job per rack" are cumulative constraints.  Time
is counted in TIME_STEPS steps of the horizon; durations round up to whole steps
(so the model never under-books a rack) and deadlines are checked on the exact
duration.  The answer is laid onto a Timeline at exact times, each job as early
as its racks allow, which removes the rounding slack; a job that no longer fits
where the model put it takes its earliest start elsewhere, or is left to the
greedy list scheduler.  The status stays FEASIBLE: exact times may do a little
better than the time-stepped model's optimum, and no bound is reported.
"""
from __future__ import annotations

import math

from ortools.sat.python import cp_model

from trnsched.candidates import Candidate
from trnsched.policies.cpsat.driver import LARGE_MODEL, Phases, Words
from trnsched.policies.cpsat.model import RackGroup, Use, Vars, hint, hint_from, read, resource_use, structure
from trnsched.objective import IntegerScale
from trnsched.policies.greedy import Greedy
from trnsched.problem import Allocation, Choice, Problem
from trnsched.racks import EPS, Split

TIME_STEPS = 2000          # the model's time resolution: steps per horizon
# CP-SAT's deterministic clock runs ~5x slower against the wall on the interval
# model than on the instant one; this keeps one unit of a deterministic
# `time_limit` near the same 1-3 s of wall time.
WORK_PER_UNIT = 0.2
LARGE_SCHEDULE = LARGE_MODEL // 4   # intervals cost more than sums: cut the model down sooner


class Schedule:
    words = Words("schedule", "list schedule", "the schedule optimises priority only")
    each_rack = True
    large = LARGE_SCHEDULE
    work_per_unit = WORK_PER_UNIT
    reports_bound = False
    tolerance = 1e-9         # objective units: the list schedule must be cheaper by more than rounding

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.horizon = problem.horizon
        self.unit = self.horizon.hours / TIME_STEPS
        self.ready = [max(0, math.ceil(job.arrival_h / self.unit - EPS)) for job in problem.jobs]

    def steps(self, c: Candidate) -> int:
        return max(1, math.ceil(c.duration_h / self.unit - EPS))

    def last_step(self, c: Candidate) -> int:
        return min(TIME_STEPS, math.floor(self.horizon.latest_start(self.problem.jobs[c.job], c) / self.unit + EPS))

    def select(self, cands: list[Candidate]) -> list[Candidate]:
        """The candidates that can start in time."""
        return [c for c in cands if self.last_step(c) >= self.ready[c.job]]

    def is_big(self, pairs: int, restricted: bool) -> bool:
        return False

    def restricted_note(self, kept: int, keep: int) -> str:
        return f"large instance: the model kept {kept} candidates (at most {keep} per job beside the baseline's)"

    def constrain(self, model: cp_model.CpModel, v: Vars, cands: list[Candidate], groups: list[RackGroup],
                  cgroups: list[list[int]], of_rack: list[int], start: Choice) -> None:
        structure(model, v, cands, groups, cgroups)
        self.job_ids = sorted({c.job for c in cands})
        self.begin = {j: model.new_int_var(self.ready[j], TIME_STEPS, f"start_{j}") for j in self.job_ids}
        for i, c in enumerate(cands):
            model.add(self.begin[c.job] <= self.last_step(c)).only_enforce_if(v.take[i])
        use = resource_use(v, cands, self.problem.fleet, groups, cgroups)
        intervals: dict[tuple[int, int, int], object] = {}

        def interval(u: Use, g: int):
            # One interval per (candidate, group, literal): the chip, power and
            # large-job families share them.
            key = (u.candidate, g, u.present.index)
            if key not in intervals:
                c = cands[u.candidate]
                intervals[key] = model.new_optional_fixed_size_interval_var(
                    self.begin[c.job], self.steps(c), u.present, f"run_{u.candidate}_{g}")
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
        # The better list schedule, its starts rounded up to whole steps.
        hint(model, v, cands, start, of_rack, cgroups, [r.pod for r in self.problem.fleet.racks])
        for j in self.job_ids:
            a = start.placed.get(j)
            model.add_hint(self.begin[j], self.ready[j] if a is None else
                           min(TIME_STEPS, max(self.ready[j], math.ceil(a.start_h / self.unit - EPS))))

    def objective(self, model: cp_model.CpModel, v: Vars, cands: list[Candidate]) -> tuple[object, float]:
        """Cost plus weighted completion time, in integer steps: a job's fixed part
        (its cost and its run) on its candidate, its wait on its start."""
        jobs, costs = self.problem.jobs, self.problem.costs
        flow_per_step = {j: self.horizon.lam * jobs[j].priority * self.unit for j in self.job_ids}
        fixed = [costs[c] + flow_per_step[c.job] * self.steps(c) for c in cands]
        scale = IntegerScale.fitting(max(max(fixed), max(f * TIME_STEPS for f in flow_per_step.values())))
        wait = {j: scale(f) for j, f in flow_per_step.items()}
        return (sum(scale(f) * x for f, x in zip(fixed, v.take))
                + sum(wait[j] * (self.begin[j] - self.ready[j]) for j in self.job_ids)), scale.step

    def start_phase2(self, model: cp_model.CpModel, v: Vars, cands: list[Candidate], phase1: cp_model.CpSolver,
                     start: Choice, best_priority: int) -> Choice | None:
        """From phase 1's complete schedule; the list schedule is the rival."""
        hint_from(model, v, phase1)
        for j in self.job_ids:
            model.add_hint(self.begin[j], phase1.value(self.begin[j]))
        return start

    def answer(self, solved: cp_model.CpSolver, v: Vars, cands: list[Candidate], cgroups: list[list[int]],
               groups: list[RackGroup]) -> tuple[Choice, list[str], bool]:
        chosen = read(solved, v, cands, cgroups)
        starts = {j: solved.value(self.begin[j]) * self.unit for j in chosen}
        racks_of = {j: Split({groups[g].racks[0]: n for g, (n, _) in part.items()} for part in parts) if c.pools
                    else {groups[g].racks[0]: n for g, (n, _) in parts.items()} for j, (c, parts) in chosen.items()}
        placed, moved, left = self.pack(chosen, starts, racks_of, cands)
        self.solved, self.moved, self.left = solved, moved, left
        notes = []
        if moved:
            notes.append(f"{moved} job(s) started later than the rack-group model had them, to fit on single racks")
        if left:
            notes.append(f"{left} job(s) did not fit on racks as the rack-group model placed them and were "
                         "re-scheduled by the list scheduler")
        return Choice(placed), notes, not (moved or left)

    def pack(self, chosen, starts: dict[int, float], racks_of: dict[int, dict[int, int]],
             cands: list[Candidate]) -> tuple[dict[int, Allocation], int, int]:
        """Put the model's jobs on its racks at its starts, checked on the Timeline at
        exact times (the model is per rack, so this holds unless rounding to steps
        bites); a job that does not fit there takes its earliest start that fits,
        and one that fits nowhere in time is re-scheduled by greedy."""
        p = self.problem
        line = p.timeline.copy()
        placed: dict[int, Allocation] = {}
        moved = 0
        left: list[int] = []
        order = sorted(chosen, key=lambda j: (starts[j], not chosen[j][0].multi, -chosen[j][0].chips, p.rank[j]))
        for j in order:
            c, _ = chosen[j]
            job = p.jobs[j]
            t = max(job.arrival_h, starts[j])
            # Its own racks, as early as they have room: never later than the model's
            # start (jobs before it only moved earlier), often a little earlier, since
            # the model rounds durations up to whole steps.
            when = line.earliest_on(c, racks_of[j], job.arrival_h, t)
            if when is not None:
                line.commit(c, racks_of[j], when)
                placed[j] = Allocation(c, racks_of[j], when)
                continue
            found = line.earliest(c, t, self.horizon.latest_start(job, c))
            if found is None:
                left.append(j)
                continue
            when, racks = found
            moved += when > t + EPS
            line.commit(c, racks, when)
            placed[j] = Allocation(c, racks, when)
        if left:
            again = set(left)
            retry = p.sub(sorted(left, key=p.rank.get), [c for c in cands if c.job in again], timeline=line)
            placed.update(Greedy().decide(retry).placed)
        return placed, moved, len(left)

    def conclude(self, choice: Choice, phases: Phases, rival: Choice | None, packed_all: bool,
                 notes: list[str]) -> Choice:
        if self.solved is phases.phase2:
            p2 = phases.phase2
            model_gap = abs(p2.objective_value - p2.best_objective_bound) / max(abs(p2.objective_value), 1e-9)
            optimal = (phases.status2 == cp_model.OPTIMAL and phases.status1 == cp_model.OPTIMAL and packed_all
                       and not phases.restricted and self.problem.priority(choice) >= phases.best_priority)
            notes.append(f"time in steps of {self.unit * 60:.3g} min, durations rounded up to whole steps: the model's "
                         f"own gap is {model_gap:.2%}" + (" (solved to optimality)" if optimal else "")
                         + "; exact times may do a little better, so the status stays FEASIBLE and no bound is "
                         "reported")
        # OPTIMAL would claim more than the time-stepped model can prove.
        choice.status = "FEASIBLE"
        return choice
