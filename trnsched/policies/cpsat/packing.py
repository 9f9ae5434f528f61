"""Exact packing sub-problems as plain data, so that they can be solved here, in a
worker process or in a Ray task (backends.py) and give the same answer.

A `PackTask` holds what one per-rack model needs and nothing else: its racks'
free chips and watts, each option's (a candidate's) chips, watts, integer cost
and the racks it may use, the jobs' priorities, a starting answer and the
solve's limits.  It carries no Candidate, Fleet or Problem: a candidate holds a
view of the whole scoring arrays, and a sub-problem of 40 racks must not ship
an UltraCluster's.  `task_for` builds one from a Problem, `solve_task` solves
it, `read_back` turns the answer into Allocations again.

It is the plain-data twin of model.py's per-rack case (`rack_groups(...,
each_rack=True)`), which the horizon model still builds from Candidates; the
search uses only this one.

The model is exact per rack: each rack's chips per type and its watts bound
what its jobs draw; a split option puts each of its two pools on one rack of
one pod (the same rack when fused); a multi-rack option takes chips from at most `max_racks`
racks of one pod.  One objective: any priority outweighs all costs.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ortools.sat.python import cp_model

from trnsched.objective import IntegerScale
from trnsched.problem import Allocation, Choice, Problem, SolverError
from trnsched.racks import Split, headroom_watts, watts_per_chip


@dataclass(frozen=True)
class Option:
    job: int
    candidate: int            # Candidate.index, for the read-back
    chip_type: str
    chips: int
    max_racks: int            # 1: one rack
    watts: int                # per chip, over idle (racks.watts_per_chip)
    cost: int                 # the objective, on the task's integer scale
    racks: tuple[int, ...]    # task rack positions it may use (single-rack: only those with room)
    parts: tuple["Part", ...] = ()   # a split: its two pools, each on one rack (fused: the same one)
    fused: bool = False


@dataclass(frozen=True)
class Part:
    chip_type: str
    chips: int
    watts: int                # per chip, over idle
    racks: tuple[int, ...]    # task rack positions with room for it


@dataclass(frozen=True)
class Limits:
    """How long one task may search: deterministic seconds (the answer then
    depends only on the task) or wall seconds."""
    seconds: float
    deterministic: bool
    seed: int = 0
    workers: int = 1          # CP-SAT workers: 1 where tasks run side by side, one per core


@dataclass(frozen=True)
class PackTask:
    racks: tuple[int, ...]                        # the fleet's rack index of each task rack
    free: tuple[dict[str, int], ...]              # per task rack: free chips per type
    headroom: tuple[int | None, ...]              # per task rack: watts left under its cap (None: no cap)
    pods: tuple[int, ...]                         # per task rack: its pod, numbered within the task
    options: tuple[Option, ...]
    priority: dict[int, int]                      # job -> priority
    start: dict[int, tuple[int, dict[int, int]]]  # job -> (option position, {task rack: chips}; a split: one per pool)
    limits: Limits
    label: str = ""                               # what the task is, for the benchmark's per-task times


@dataclass
class PackAnswer:
    placed: dict[int, tuple[int, dict[int, int]]]  # job -> (option position, {task rack: chips})
    found: bool                                    # CP-SAT returned a solution (else `placed` is empty)
    deterministic_s: float
    wall_s: float
    label: str = ""


def solve_task(task: PackTask) -> PackAnswer:
    """Most priority, then least cost, from the task's start, within its limits.
    In deterministic mode the answer depends on the task alone, wherever it runs."""
    began = time.perf_counter()
    model = cp_model.CpModel()
    take, on, chips, used, in_pod = [], {}, {}, {}, {}
    part_on: dict[tuple[int, int, int], object] = {}      # (split option, pool, rack) -> the pool there
    for i, o in enumerate(task.options):
        take.append(model.new_bool_var(f"take_{i}"))
        if o.parts:
            for k, part in enumerate(o.parts):
                for r in part.racks:
                    part_on[i, k, r] = model.new_bool_var(f"part_{i}_{k}_{r}")
                model.add(sum(part_on[i, k, r] for r in part.racks) == take[i])
            if o.fused:
                for r in set(o.parts[0].racks) | set(o.parts[1].racks):
                    model.add(part_on.get((i, 0, r), 0) == part_on.get((i, 1, r), 0))
            else:       # both pools in one pod
                for p in {task.pods[r] for part in o.parts for r in part.racks}:
                    model.add(sum(part_on[i, 0, r] for r in o.parts[0].racks if task.pods[r] == p)
                              == sum(part_on[i, 1, r] for r in o.parts[1].racks if task.pods[r] == p))
            continue
        if o.max_racks == 1:
            for r in o.racks:
                on[i, r] = model.new_bool_var(f"on_{i}_{r}")
            model.add(sum(on[i, r] for r in o.racks) == take[i])
            continue
        for r in o.racks:
            chips[i, r] = model.new_int_var(0, min(o.chips, task.free[r].get(o.chip_type, 0)), f"chips_{i}_{r}")
            used[i, r] = model.new_bool_var(f"used_{i}_{r}")
            model.add(chips[i, r] <= task.free[r].get(o.chip_type, 0) * used[i, r])
            model.add(chips[i, r] >= used[i, r])
        model.add(sum(chips[i, r] for r in o.racks) == o.chips * take[i])
        model.add(sum(used[i, r] for r in o.racks) <= o.max_racks)
        pods = sorted({task.pods[r] for r in o.racks})
        if len(pods) > 1:       # all of its racks in one pod
            for p in pods:
                in_pod[i, p] = model.new_bool_var(f"pod_{i}_{p}")
            model.add(sum(in_pod[i, p] for p in pods) == take[i])
            for r in o.racks:
                model.add_implication(used[i, r], in_pod[i, task.pods[r]])
    by_job: dict[int, list] = {}
    for i, o in enumerate(task.options):
        by_job.setdefault(o.job, []).append(take[i])
    for xs in by_job.values():
        if len(xs) > 1:
            model.add_at_most_one(xs)
    chip_terms: dict[tuple[int, str], list] = {}
    watt_terms: dict[int, list] = {}
    for (i, r), x in on.items():
        o = task.options[i]
        chip_terms.setdefault((r, o.chip_type), []).append(o.chips * x)
        watt_terms.setdefault(r, []).append(o.watts * o.chips * x)
    for (i, r), x in chips.items():
        o = task.options[i]
        chip_terms.setdefault((r, o.chip_type), []).append(x)
        watt_terms.setdefault(r, []).append(o.watts * x)
    for (i, k, r), x in part_on.items():
        part = task.options[i].parts[k]
        chip_terms.setdefault((r, part.chip_type), []).append(part.chips * x)
        watt_terms.setdefault(r, []).append(part.watts * part.chips * x)
    for (r, t), terms in chip_terms.items():
        if len(terms) > 1:
            model.add(sum(terms) <= task.free[r].get(t, 0))
    for r, terms in watt_terms.items():
        if task.headroom[r] is not None:
            model.add(sum(terms) <= max(0, task.headroom[r]))
    big = max(1, max((o.cost for o in task.options), default=1)) * (len(by_job) + 1)
    model.minimize(sum((o.cost - big * task.priority[o.job]) * x for o, x in zip(task.options, take)))
    _hint(model, task, take, on, chips, used, in_pod, part_on)

    solver = cp_model.CpSolver()
    if task.limits.deterministic:
        solver.parameters.max_deterministic_time = task.limits.seconds
    else:
        solver.parameters.max_time_in_seconds = max(0.01, task.limits.seconds)
    solver.parameters.num_workers = task.limits.workers
    solver.parameters.interleave_search = task.limits.deterministic and task.limits.workers > 1
    solver.parameters.random_seed = task.limits.seed
    solver.parameters.cp_model_presolve = False    # small models, short limits: search from the hint at once
    solver.parameters.catch_sigint_signal = False  # the command handles signals (interrupts.py)
    status = solver.solve(model)
    if status == cp_model.MODEL_INVALID:     # a bug, not "nothing better found" (DESIGN.md: statuses)
        raise SolverError(f"CP-SAT rejected a packing model: {solver.solution_info() or 'MODEL_INVALID'}")
    placed: dict[int, tuple[int, dict[int, int]]] = {}
    found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    if found:
        for i, o in enumerate(task.options):
            if not solver.boolean_value(take[i]):
                continue
            if o.parts:
                racks = tuple({r: part.chips for r in part.racks if solver.boolean_value(part_on[i, k, r])}
                              for k, part in enumerate(o.parts))
            elif o.max_racks == 1:
                racks = {r: o.chips for r in o.racks if solver.boolean_value(on[i, r])}
            else:
                racks = {r: solver.value(chips[i, r]) for r in o.racks if solver.value(chips[i, r]) > 0}
            placed[o.job] = (i, racks)
    return PackAnswer(placed, found, solver.deterministic_time, time.perf_counter() - began, task.label)


def _hint(model: cp_model.CpModel, task: PackTask, take: list, on: dict, chips: dict, used: dict,
          in_pod: dict, part_on: dict) -> None:
    chosen = {i: racks for i, racks in task.start.values()}
    for (i, k, r), x in part_on.items():
        racks = chosen.get(i)
        model.add_hint(x, racks is not None and r in racks[k])
    for (i, p), x in in_pod.items():
        racks = chosen.get(i)
        model.add_hint(x, racks is not None and any(task.pods[r] == p for r in racks))
    for i, o in enumerate(task.options):
        racks = chosen.get(i)
        model.add_hint(take[i], racks is not None)
        if o.parts:
            continue
        for r in o.racks:
            n = 0 if racks is None else racks.get(r, 0)
            if o.max_racks == 1:
                model.add_hint(on[i, r], n > 0)
            else:
                model.add_hint(chips[i, r], n)
                model.add_hint(used[i, r], n > 0)


def task_for(problem: Problem, start: Choice, limits: Limits, *, racks: list[int] | None = None,
             label: str = "") -> PackTask | None:
    """The exact packing of `problem` (its jobs to decide, its candidates, on the
    room its ledger leaves) as a task, from `start`, on `racks` (default: every
    rack with room).  None when no candidate has room anywhere."""
    fleet = problem.fleet
    pool = range(len(fleet.racks)) if racks is None else racks
    chosen = [r for r in pool if any(fleet.racks[r].free(t) > 0 for t in fleet.racks[r].chips)]
    position = {r: k for k, r in enumerate(chosen)}
    pod_number: dict[str, int] = {}
    pods = tuple(pod_number.setdefault(fleet.racks[r].pod, len(pod_number)) for r in chosen)
    free = tuple({t: fleet.racks[r].free(t) for t in fleet.racks[r].chips} for r in chosen)
    headroom = tuple(headroom_watts(fleet, chosen))
    usable = []
    parts_of: dict[int, tuple[Part, ...]] = {}
    for c in problem.candidates:
        if c.pools:
            parts = []
            for u in c.pools:
                w = watts_per_chip(u, fleet)
                parts.append(Part(u.chip_type, u.chips, w, tuple(
                    position[r] for r in u.racks if r in position and free[position[r]].get(u.chip_type, 0) >= u.chips
                    and (headroom[position[r]] is None or max(0, headroom[position[r]]) >= w * u.chips))))
            if all(part.racks for part in parts):
                parts_of[c.index] = tuple(parts)
                usable.append((c, 0, tuple(sorted({r for part in parts for r in part.racks}))))
            continue
        watts = watts_per_chip(c, fleet)
        if c.multi:
            mine = tuple(position[r] for r in c.racks if r in position and free[position[r]].get(c.chip_type, 0) > 0)
            if sum(free[k][c.chip_type] for k in mine) < c.chips:
                continue
        else:
            mine = tuple(position[r] for r in c.racks if r in position
                         and free[position[r]].get(c.chip_type, 0) >= c.chips
                         and (headroom[position[r]] is None or max(0, headroom[position[r]]) >= watts * c.chips))
        if mine:
            usable.append((c, watts, mine))
    if not usable:
        return None
    scale = IntegerScale.fitting(max(problem.costs[c] for c, _, _ in usable))
    options = tuple(Option(c.job, c.index, c.chip_type, c.chips, c.max_racks, w, scale(problem.costs[c]), mine,
                           parts_of.get(c.index, ()), c.fused) for c, w, mine in usable)
    at = {o.candidate: i for i, o in enumerate(options)}
    begin = {}
    for j, a in start.placed.items():
        i = at.get(a.candidate.index)
        # A start the task's options cannot express (a rack left out) is no hint.
        if i is None:
            continue
        if options[i].parts:
            pieces = a.racks.parts
            if all(r in position and position[r] in part.racks for piece, part in zip(pieces, options[i].parts)
                   for r in piece):
                begin[j] = (i, tuple({position[r]: n for r, n in piece.items()} for piece in pieces))
        elif all(r in position and position[r] in options[i].racks for r in a.racks):
            begin[j] = (i, {position[r]: n for r, n in a.racks.items()})
    priority = {o.job: problem.jobs[o.job].priority for o in options}
    return PackTask(tuple(chosen), free, headroom, pods, options, priority, begin, limits, label)


def read_back(problem: Problem, task: PackTask, answer: PackAnswer) -> Choice:
    """The answer as a Choice of the problem's candidates on the fleet's racks."""
    by_index = {c.index: c for c in problem.candidates}

    def on_fleet(racks):
        if isinstance(racks, tuple):      # a split's pools
            return Split({task.racks[r]: n for r, n in piece.items()} for piece in racks)
        return {task.racks[r]: n for r, n in racks.items()}

    placed = {j: Allocation(by_index[task.options[i].candidate], on_fleet(racks))
              for j, (i, racks) in answer.placed.items()}
    found = Choice(placed, solve_time_s=answer.deterministic_s)
    found.objective_value = problem.value(found) if answer.found else math.inf
    return found
