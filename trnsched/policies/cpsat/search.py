"""Large-neighbourhood search for big instances.

On big instances CP-SAT's whole-fleet model improves slowly, while greedy leaves
much on the table (each job, in priority order, takes its cheapest candidate
that still fits, stranding later jobs on expensive ones).  The search frees a
few dozen jobs at a time and re-places them exactly (per-rack model, everything
else held fixed), keeping the result when it places more priority, or as much
for less.  Two kinds of neighbourhood take turns: by chip type (TypeRounds) and
clearing the racks one job needs (Clearing).  Each round's neighbourhood is
chosen without randomness, so in deterministic mode the answer repeats.
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
CLEARING_MOVERS = 30    # jobs a clearing round may move off the racks it clears


def improve(problem: Problem, choice: Choice, clock: Clock, *, work: float) -> tuple[Choice, int]:
    """Improve `choice` within `work` seconds of the clock's currency (deterministic
    seconds of the rounds' solves, or wall seconds, model building included, and
    never past the deadline); returns it and how many rounds it solved.  Rounds alternate
    between the two kinds of neighbourhood while both have one to offer."""
    costs = problem.costs
    cheapest = {j: min(cs, key=lambda c: costs[c]) for j, cs in problem.by_job.items()}
    placed = dict(choice.placed)
    by_type = TypeRounds(problem, cheapest)
    clearing = Clearing(problem, cheapest)
    solved, rounds, turn = 0.0, 0, 0
    began = time.perf_counter()
    per_round = max(0.05, min(0.5, work / 20))

    def spent() -> float:
        return solved if clock.deterministic else time.perf_counter() - began

    while spent() + per_round <= work + 1e-9 and not clock.spent():
        turn += 1
        kinds = [k for k in ((by_type, clearing) if turn % 2 else (clearing, by_type)) if not k.done]
        if not kinds:
            break
        kind = kinds[0]
        free = kind.neighbourhood(placed)
        if not free:
            continue
        rounds += 1
        kept = RackLedger(problem.fleet)
        for j, a in placed.items():
            if j not in free:
                kept.commit(a.candidate, a.racks)
        sub = problem.sub(free, [c for j in free for c in problem.by_job[j]], ledger=RackLedger(kept.as_fleet()))
        current = Choice({j: placed[j] for j in free if j in placed})
        current.objective_value = sub.value(current)
        found = exact(sub, current, clock.solver(per_round))
        solved += found.solve_time_s
        gain = sub.priority(found) - sub.priority(current)
        better = gain > 0 or (gain == 0 and found.objective_value < current.objective_value
                              - 1e-9 * max(1.0, current.objective_value))
        if better:
            for j in free:
                placed.pop(j, None)
            placed.update(found.placed)
            record(problem.config, 3, problem.value(Choice(placed)))
            for other in (by_type, clearing):
                if other is not kind:
                    other.changed()     # an exhausted kind may find moves again
        kind.outcome(better)
    out = Choice(placed)
    out.objective_value = problem.value(out)
    return out, rounds


class TypeRounds:
    """Chip types take turns.  A round frees the jobs whose cheapest candidate is on
    the type but who run elsewhere (largest regret first), the jobs on the type that
    lose least by moving off it, and unplaced jobs that could use it; after a round
    that finds nothing, that type's next round looks further down the lists."""

    def __init__(self, problem: Problem, cheapest: dict) -> None:
        self.problem, self.cheapest = problem, cheapest
        self.types = problem.fleet.types_present()
        self.depth = {t: 0 for t in self.types}
        self.turn = self.idle = 0
        self.current = self.types[0] if self.types else None

    @property
    def done(self) -> bool:
        return not self.types or self.idle >= len(self.types) * MAX_DEPTH

    def neighbourhood(self, placed: dict[int, Allocation]) -> list[int]:
        p, costs, cheapest = self.problem, self.problem.costs, self.cheapest
        t = self.current = self.types[self.turn % len(self.types)]
        self.turn += 1
        take = slice(self.depth[t] * NEIGHBOURHOOD, (self.depth[t] + 1) * NEIGHBOURHOOD)

        def regret(j: int) -> float:
            return costs[placed[j].candidate] - costs[cheapest[j]]

        def move_loss(j: int) -> float:
            """What moving off this type costs the job at the least."""
            other = [costs[c] for c in p.by_job[j] if c.chip_type != t]
            return (min(other) if other else math.inf) - costs[placed[j].candidate]

        unhappy = sorted((j for j in placed if cheapest[j].chip_type == t and regret(j) > 1e-9),
                         key=lambda j: (-regret(j), j))[take]
        holders = sorted((j for j in placed if placed[j].candidate.chip_type == t and j not in unhappy),
                         key=lambda j: (move_loss(j), j))[:NEIGHBOURHOOD]
        waiting = sorted((j for j in p.by_job if j not in placed and any(c.chip_type == t for c in p.by_job[j])),
                         key=lambda j: (-p.jobs[j].priority, costs[cheapest[j]], j))[take]
        if not unhappy and not waiting:
            self.depth[t] = MAX_DEPTH            # nothing further down either
            self.idle += 1
            return []
        return unhappy + holders + waiting

    def changed(self) -> None:
        self.idle = 0

    def outcome(self, better: bool) -> None:
        t = self.current
        if better:
            self.depth[t], self.idle = 0, 0
        else:
            self.depth[t] = min(self.depth[t] + 1, MAX_DEPTH)
            self.idle += 1


class Clearing:
    """Room for one job on its cheapest candidate: the job and every job holding
    the racks it would take there (the rack with the fewest jobs to move, or the
    roomiest racks of the pod with the fewest), so that the
    exact model can move them elsewhere.  Unplaced jobs come first (highest
    priority first), then placed jobs by regret; each job is tried once until a
    round succeeds, which makes every job eligible again.  Type rounds rarely make
    such moves: a big job's racks are held by many small jobs on other lists."""

    def __init__(self, problem: Problem, cheapest: dict) -> None:
        self.problem, self.cheapest = problem, cheapest
        self.tried: set[int] = set()
        self.done = False

    def neighbourhood(self, placed: dict[int, Allocation]) -> list[int]:
        p, costs = self.problem, self.problem.costs
        waiting = [j for j in p.job_order() if j not in placed and j in self.cheapest and j not in self.tried]
        regret = {j: costs[a.candidate] - costs[self.cheapest[j]] for j, a in placed.items() if j not in self.tried}
        unhappy = sorted((j for j, r in regret.items() if r > 1e-9), key=lambda j: (-regret[j], j))
        queue = waiting + unhappy
        if not queue:
            self.done = True
            return []
        j = queue[0]
        self.tried.add(j)
        target = self.cheapest[j]
        ledger = RackLedger(p.fleet)
        on_rack: dict[int, list[int]] = {}
        for k, a in placed.items():
            ledger.commit(a.candidate, a.racks)
            for r in a.racks:
                on_rack.setdefault(r, []).append(k)
        t = target.chip_type

        def room(r: int) -> int:
            """Chips of the type on rack r once every job on it, this one included,
            has moved (chips only: the exact model checks the power)."""
            return ledger.room.free[r].get(t, 0) + sum(placed[k].racks[r] for k in on_rack.get(r, ())
                                                      if placed[k].candidate.chip_type == t)

        if not target.multi:
            fitting = [r for r in target.racks if room(r) >= target.chips]
            racks = sorted(fitting, key=lambda r: (len(on_rack.get(r, ())), -room(r), r))[:1]
        else:
            racks, fewest = [], math.inf
            for pod in target.by_pod:
                roomiest = sorted(pod, key=lambda r: (-room(r), r))[:target.max_racks]
                movers = sum(len(on_rack.get(r, ())) for r in roomiest)
                if sum(room(r) for r in roomiest) >= target.chips and movers < fewest:
                    racks, fewest = roomiest, movers
        if not racks:
            return []
        holders = sorted({k for r in racks for k in on_rack.get(r, ()) if k != j},
                         key=lambda k: (costs[placed[k].candidate], k))[:CLEARING_MOVERS]
        return [j] + holders

    def changed(self) -> None:
        self.tried.clear()
        self.done = False

    def outcome(self, better: bool) -> None:
        if better:
            self.changed()


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
