"""Large-neighbourhood search for big instances.

On big instances CP-SAT's whole-fleet model improves slowly, while greedy leaves
much on the table (each job, in priority order, takes its cheapest candidate
that still fits, stranding later jobs on expensive ones).  The search frees a
few dozen jobs at a time -- those whose cheapest candidate is on one chip type
but who run elsewhere, the jobs holding that type, and unplaced jobs that could
use it -- and re-places them exactly (per-rack model, everything else held
fixed), keeping the result when it places more priority, or as much for less.
Chip types take turns; each round's neighbourhood is chosen without randomness,
so the answer is deterministic.
"""
from __future__ import annotations

import math
import time

from ortools.sat.python import cp_model

from trnsched.policies.cpsat.clock import Clock
from trnsched.policies.cpsat.driver import record
from trnsched.policies.cpsat.model import (capacity_sums, candidate_groups, hint, rack_groups, read,
                                           resource_use, structure, variables)
from trnsched.objective import IntegerScale
from trnsched.problem import Allocation, Choice, Problem
from trnsched.racks import RackLedger

NEIGHBOURHOOD = 12      # jobs of each kind per round
MAX_DEPTH = 4           # after a round finds nothing, the next for that type looks this much further down


def improve(problem: Problem, choice: Choice, clock: Clock, *, work: float) -> tuple[Choice, int]:
    """Improve `choice` within `work` seconds of the clock's currency (deterministic
    seconds of the rounds' solves, or wall seconds, model building included, and
    never past the deadline); returns it and the rounds run."""
    costs, jobs = problem.costs, problem.jobs
    by_job = problem.by_job
    cheapest = {j: min(cs, key=lambda c: costs[c]) for j, cs in by_job.items()}
    placed = dict(choice.placed)
    types = problem.fleet.types_present()
    depth = {t: 0 for t in types}       # per type: how many slices down the lists (0 after a success)
    solved, rounds, idle = 0.0, 0, 0
    began = time.perf_counter()
    per_round = max(0.05, min(0.5, work / 20))

    def spent() -> float:
        return solved if clock.deterministic else time.perf_counter() - began

    while spent() + per_round <= work + 1e-9 and not clock.spent() and idle < len(types) * MAX_DEPTH:
        t = types[rounds % len(types)]
        rounds += 1
        take = slice(depth[t] * NEIGHBOURHOOD, (depth[t] + 1) * NEIGHBOURHOOD)

        def regret(j: int) -> float:
            return costs[placed[j].candidate] - costs[cheapest[j]]

        def move_loss(j: int) -> float:
            """What moving off this type costs the job at the least."""
            other = [costs[c] for c in by_job[j] if c.chip_type != t]
            return (min(other) if other else math.inf) - costs[placed[j].candidate]

        unhappy = sorted((j for j in placed if cheapest[j].chip_type == t and regret(j) > 1e-9),
                         key=lambda j: (-regret(j), j))[take]
        holders = sorted((j for j in placed if placed[j].candidate.chip_type == t and j not in unhappy),
                         key=lambda j: (move_loss(j), j))[:NEIGHBOURHOOD]
        waiting = sorted((j for j in by_job if j not in placed and any(c.chip_type == t for c in by_job[j])),
                         key=lambda j: (-jobs[j].priority, costs[cheapest[j]], j))[take]
        free = unhappy + holders + waiting
        if not unhappy and not waiting:
            depth[t] = MAX_DEPTH            # nothing further down either
            idle += 1
            continue
        kept = RackLedger(problem.fleet)
        for j, a in placed.items():
            if j not in free:
                kept.commit(a.candidate, a.racks)
        sub = problem.sub(free, [c for j in free for c in by_job[j]], ledger=RackLedger(kept.as_fleet()))
        current = Choice({j: placed[j] for j in free if j in placed})
        current.objective_value = sub.value(current)
        found = exact(sub, current, clock.solver(per_round))
        solved += found.solve_time_s
        gain = sub.priority(found) - sub.priority(current)
        if gain > 0 or (gain == 0 and found.objective_value < current.objective_value
                        - 1e-9 * max(1.0, current.objective_value)):
            for j in free:
                placed.pop(j, None)
            placed.update(found.placed)
            depth[t], idle = 0, 0
            record(problem.config, 3, problem.value(Choice(placed)))
        else:
            depth[t] = min(depth[t] + 1, MAX_DEPTH)
            idle += 1
    out = Choice(placed)
    out.objective_value = problem.value(out)
    return out, rounds


def exact(problem: Problem, start: Choice, solver: cp_model.CpSolver) -> Choice:
    """A sub-problem on a per-rack model: most priority, then least cost, starting
    from `start`, within the limits `solver` carries; solve_time_s holds the
    deterministic time spent."""
    fleet = problem.fleet
    groups, of_rack = rack_groups(fleet, each_rack=True)
    # Only racks with room: most are full with the other jobs held fixed, and a
    # model over them all is mostly zeros.
    cands = problem.candidates
    cgroups = [[g for g in gs if groups[g].free.get(c.chip_type, 0) >= (1 if c.multi else c.chips)]
               for c, gs in zip(cands, candidate_groups(cands, of_rack))]
    usable = [i for i, c in enumerate(cands)
              if cgroups[i] and (not c.multi or sum(groups[g].free[c.chip_type] for g in cgroups[i]) >= c.chips)]
    cands, cgroups = [cands[i] for i in usable], [cgroups[i] for i in usable]
    if not cands:
        return Choice({}, objective_value=0.0)
    scale = IntegerScale.fitting(max(problem.costs[c] for c in cands))
    costs = [scale(problem.costs[c]) for c in cands]
    big = max(costs, default=1) * (len({c.job for c in cands}) + 1)
    model = cp_model.CpModel()
    v = variables(model, cands, groups, cgroups)
    structure(model, v, cands, groups, cgroups)
    capacity_sums(model, resource_use(v, cands, fleet, groups, cgroups), groups)
    # One objective: any priority outweighs all costs.
    model.minimize(sum((k - big * problem.jobs[c.job].priority) * x for k, c, x in zip(costs, cands, v.take)))
    hint(model, v, cands, start, of_rack, cgroups, [r.pod for r in fleet.racks])
    solver.parameters.cp_model_presolve = False    # small models, short limits: search from the hint at once
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Choice({}, objective_value=math.inf, solve_time_s=solver.deterministic_time)
    placed = {j: Allocation(c, {groups[g].racks[0]: n for g, (n, _) in parts.items()})
              for j, (c, parts) in read(solver, v, cands, cgroups).items()}
    found = Choice(placed, solve_time_s=solver.deterministic_time)
    found.objective_value = problem.value(found)
    return found
