"""Placing now: the rack-group model with capacity and power as sums, its answer
packed onto racks, and a bound that is a bound.

The group-level model is a relaxation of per-rack packing.  The chosen
candidates are packed into their groups' racks (multi-rack jobs first, then the
rest largest first, roomiest racks first); when every one fits, the
relaxation's optimum is the fleet's and the status stays OPTIMAL.  A job that
does not pack is re-placed greedily if it can be, and the status drops to
FEASIBLE.  On big models the neighbourhood search (search.py) takes phase 2's
place, from the answer and from the baseline when that places as much.
"""
from __future__ import annotations

import math
import time

from ortools.sat.python import cp_model

from trnsched.candidates import Candidate
from trnsched.policies.cpsat.driver import ANSWERS, KEEP_GROUPS, LARGE_MODEL, Phases, Words
from trnsched.policies.cpsat.model import (RackGroup, Vars, capacity_sums, hint, hint_from, read,
                                           resource_use, structure)
from trnsched.policies.cpsat.bounds import whole_bounds
from trnsched.policies.cpsat.backends import open_backend
from trnsched.policies.cpsat.search import SearchStats, improve
from trnsched.objective import IntegerScale
from trnsched.policies.greedy import Greedy
from trnsched.problem import Allocation, Choice, Problem
from trnsched.racks import RackLedger, watts_per_chip

# Above BIG_MODEL (candidate, rack group) pairs CP-SAT first runs without
# presolve, and the neighbourhood search replaces phase 2, which found little or
# nothing on such models in its time (measured at 300 to 5,000 jobs).
BIG_MODEL = 20_000


class Instant:
    words = Words("solution", "baseline answer", "placements optimise priority only")
    each_rack = False
    large = LARGE_MODEL
    big = BIG_MODEL
    work_per_unit = 1.0
    reports_bound = True
    tolerance = 0.0

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.pods = [r.pod for r in problem.fleet.racks]
        self.step = 1.0          # objective units per integer of the model's objective

    def select(self, cands: list[Candidate]) -> list[Candidate]:
        return cands

    def is_big(self, pairs: int, restricted: bool) -> bool:
        return restricted or pairs > self.big

    def restricted_note(self, kept: int, keep: int) -> str:
        return (f"large instance: the model kept {kept} candidates (at most {keep} per job beside the baseline's) "
                f"on at most {KEEP_GROUPS} rack groups each; its own bounds hold for that model only, so the "
                "reported bounds come from the aggregated relaxation of the whole problem")

    def constrain(self, model: cp_model.CpModel, v: Vars, cands: list[Candidate], groups: list[RackGroup],
                  cgroups: list[list[int]], of_rack: list[int], start: Choice) -> None:
        structure(model, v, cands, groups, cgroups)
        capacity_sums(model, resource_use(v, cands, self.problem.fleet, groups, cgroups), groups)
        self.of_rack, self.cgroups = of_rack, cgroups
        hint(model, v, cands, start, of_rack, cgroups, self.pods)

    def objective(self, model: cp_model.CpModel, v: Vars, cands: list[Candidate]) -> tuple[object, float]:
        """Costs in half steps of the scale: a scale-out split pays half a step more,
        so of two placements that cost the same the one keeping a split's pools on
        one rack's fabric (the lower TTFT) wins.  Each candidate's integer is then
        within 1.5 steps (3 half steps) of its cost."""
        costs = self.problem.costs
        scale = IntegerScale.fitting(max((costs[c] for c in cands), default=0.0))
        self.step = scale.step / 2
        return sum((2 * scale(costs[c]) + (1 if c.pools and not c.fused else 0)) * x
                   for c, x in zip(cands, v.take)), self.step

    def start_phase2(self, model: cp_model.CpModel, v: Vars, cands: list[Candidate], phase1: cp_model.CpSolver,
                     start: Choice, best_priority: int) -> Choice | None:
        """From the baseline when it places as much priority (it is then the rival
        too), else from phase 1's complete solution."""
        if self.problem.priority(start) >= best_priority:
            hint(model, v, cands, start, self.of_rack, self.cgroups, self.pods)
            return start
        hint_from(model, v, phase1)
        return None

    def answer(self, solved: cp_model.CpSolver, v: Vars, cands: list[Candidate], cgroups: list[list[int]],
               groups: list[RackGroup]) -> tuple[Choice, list[str], bool]:
        placed, dropped = self.pack(read(solved, v, cands, cgroups), groups, cands)
        notes = [f"{len(dropped)} job(s) did not pack into racks as the group-level model placed them "
                 "and were re-placed greedily"] if dropped else []
        return Choice(placed), notes, not dropped

    def pack(self, chosen: dict[int, tuple[Candidate, dict[int, tuple[int, int]]]], groups: list[RackGroup],
             cands: list[Candidate]) -> tuple[dict[int, Allocation], list[int]]:
        """Each job on the roomiest racks of the groups the model gave it, with room
        for its chips and watts; what does not fit goes to greedy afterwards."""
        p = self.problem
        ledger = RackLedger(p.fleet)
        placed: dict[int, Allocation] = {}
        dropped: list[int] = []
        for j in sorted(chosen, key=lambda j: (not chosen[j][0].multi, -chosen[j][0].chips, p.rank[j])):
            c, parts = chosen[j]
            if c.pools:       # each pool on a rack of its group (fused: one rack of the shared group)
                found = ledger.room.fit_split(c, tuple([r for g in part for r in groups[g].racks] for part in parts))
                if found is not None:
                    ledger.commit(c, found)
                    placed[j] = Allocation(c, found)
                else:
                    dropped.append(j)
                continue
            watts = watts_per_chip(c, p.fleet)
            racks: dict[int, int] = {}
            packed = True
            for g, (want, count) in sorted(parts.items()):
                taken, missing = ledger.room.fill(groups[g].racks, c.chip_type, want, count, watts, whole=not c.multi)
                racks.update(taken)
                packed &= missing == 0
            if packed:
                ledger.commit(c, racks)
                placed[j] = Allocation(c, racks)
            else:
                dropped.append(j)
        if dropped:
            again = set(dropped)
            retry = p.sub(sorted(dropped, key=p.rank.get), [c for c in cands if c.job in again], ledger=ledger)
            placed.update(Greedy().decide(retry).placed)
        return placed, dropped

    def conclude(self, choice: Choice, phases: Phases, rival: Choice | None, packed_all: bool,
                 notes: list[str]) -> Choice:
        p = self.problem
        budget = p.config.time_limit
        # Wall seconds kept back for the whole-problem bounds, which this path may
        # need: items and GLOP took 2.2 s for 5,000 jobs' 150,000 candidates, so
        # ~2e-5 s per candidate, but never more than a third of what is left.
        # (In deterministic mode GLOP runs unlimited: bounds.whole_bounds.)
        bound_work = 0.0
        if not phases.clock.deterministic:
            bound_work = min(max(0.05 * budget, 2e-5 * len(p.candidates)), phases.clock.budget() / 3)
        if phases.big:
            before = (p.priority(choice), choice.objective_value)
            work = max(0.0, phases.clock.rest(max(0.5 * budget, budget - phases.spent)) - bound_work)
            # The search ends in a local optimum that depends on where it starts:
            # from the baseline too, when it places as much, and the better stands.
            starts = [choice] + ([rival] if rival is not None and rival.placed != choice.placed else [])
            searched = []
            began = time.perf_counter()
            stats = SearchStats()
            with open_backend(p.config) as backend:
                for k, s in enumerate(starts):
                    share = work / len(starts)
                    if not phases.clock.deterministic:     # what the earlier starts left
                        share = (work - (time.perf_counter() - began)) / (len(starts) - k)
                    searched.append(improve(p, s, phases.clock, work=share, backend=backend, stats=stats))
            choice, _ = min(searched, key=lambda cr: (-p.priority(cr[0]), cr[0].objective_value))
            choice.subproblems = stats.summary(p.config.backend, p.config.workers, p.config.deterministic)
            if (p.priority(choice), choice.objective_value) != before:
                notes.append(f"neighbourhood search ({sum(r for _, r in searched)} rounds on small exact models, from "
                             f"{len(starts)} starting point(s)) took the answer from priority {before[0]}, objective "
                             f"{before[1]:,.2f} to priority {p.priority(choice)}, objective "
                             f"{choice.objective_value:,.2f}")
        # Bounds for the whole problem, lexicographic like the objective (DESIGN.md):
        # placeable priority, and the objective among placements placing at least
        # this answer's priority.  The group model relaxes the fleet, so its bounds
        # hold unless it was cut down; phase 2's holds only at phase 1's priority.
        status = phases.phase2.status_name(phases.status2) if phases.phase2_ok else "FEASIBLE"
        placed = p.priority(choice)
        if status == "OPTIMAL" and (phases.status1 != cp_model.OPTIMAL or not packed_all
                                    or placed < phases.best_priority or phases.restricted):
            status = "FEASIBLE"
        priority_bound = bound = None
        if not phases.restricted and phases.status1 in ANSWERS:
            # CP-SAT's bound can start above the jobs' whole priority (9,966 against 236
            # on a generated 100-job instance stopped early): that sum bounds it too.
            every = sum(p.jobs[j].priority for j in p.order)
            priority_bound = max(placed, min(every, math.floor(phases.phase1.best_objective_bound + 1e-6)))
            if phases.phase2_ok and placed >= phases.best_priority:
                # Each candidate's integer cost is within 3 half steps of its real cost.
                jobs = len({c.job for c in phases.cands})
                bound = max(0.0, (phases.phase2.best_objective_bound - 3 * jobs) * self.step)
        if priority_bound is None or bound is None:
            whole = whole_bounds(p, placed, phases.clock, bound_work)
            if whole.priority is not None:
                priority_bound = whole.priority if priority_bound is None else min(priority_bound, whole.priority)
            if whole.objective is not None:
                bound = whole.objective if bound is None else max(bound, whole.objective)
        choice.status = status
        choice.priority_bound = priority_bound
        choice.best_bound = None if bound is None else min(bound, choice.objective_value)
        choice.gap = lexicographic_gap(placed, priority_bound, choice.objective_value, choice.best_bound)
        return choice


def lexicographic_gap(placed: int, priority_bound: int | None, objective: float, bound: float | None) -> float | None:
    """The larger of the relative priority gap and the relative objective gap."""
    if priority_bound is None or bound is None:
        return None
    priority_gap = (priority_bound - placed) / priority_bound if priority_bound > 0 else 0.0
    objective_gap = (objective - bound) / objective if objective > 0 else 0.0
    return max(priority_gap, objective_gap)
