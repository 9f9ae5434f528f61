"""The two-phase CP-SAT driver: one flow, whether jobs are placed now
(instant.py) or scheduled over a horizon (horizon.py).

1. The best of greedy, first-fit and (placing now) first-fit in order of
   priority per chip is the hint, the fallback, and the rival the answer must beat.
2. A model over LARGE pairs of (candidate, rack group) is cut down to a few
   candidates per job on a few groups.
3. Phase 1 maximises placed priority.  On big models a short pass without
   presolve comes first and phase 1 starts from its answer.
4. Phase 2 holds that priority and minimises the objective (big instant models
   skip it: the neighbourhood search takes its time).
5. The formulation reads the answer back onto racks (and times); the baseline
   replaces it when it is better; the formulation says how sure the answer is.

A formulation supplies what differs between the two: constraints, the phase-2
objective and hints, the read-back, and the status and bound.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from ortools.sat.python import cp_model

from trnsched.candidates import Candidate, by_job
from trnsched.policies.cpsat.clock import Clock
from trnsched.policies.cpsat.model import (RackGroup, Vars, candidate_groups, hint_from, rack_groups,
                                           variables)
from trnsched.objective import Costs
from trnsched.policies.first_fit import FirstFit, densest_first
from trnsched.policies.greedy import Greedy
from trnsched.problem import Choice, Problem, SolverConfig, SolverError
from trnsched.racks import RackLedger

# Above LARGE_MODEL (candidate, rack group) pairs the instant model is cut down:
# presolve alone on the full model outlasts a time limit of seconds (1,000 jobs
# on 16k chips make ~230,000 pairs).  Formulations set their own threshold.
LARGE_MODEL = 40_000
# Above HUGE_MODEL pairs even in the cut-down model the whole-fleet phases are
# skipped: at 100,000 jobs (~700,000 pairs) phase 1 found nothing beyond its
# hint in ~300 s, twice, and took the peak from 5.5 to 13 GB.
HUGE_MODEL = 300_000
KEEP_PER_JOB = 4         # a cut-down model keeps this many candidates per job beside the baseline's
KEEP_GROUPS = 4          # ... each on this many rack groups (its roomiest) beside the baseline's
ANSWERS = (cp_model.OPTIMAL, cp_model.FEASIBLE)


@dataclass(frozen=True)
class Words:
    """How the notes name things in each formulation."""
    answer: str            # "solution"
    baseline: str          # "baseline answer"
    priority_only: str     # "placements optimise priority only"


@dataclass
class Phases:
    """What the solves gave, for the formulation's verdict."""
    phase1: cp_model.CpSolver
    status1: int
    phase2: cp_model.CpSolver
    status2: int
    phase2_ok: bool
    spent: float             # what the passes before phase 2 used, in the clock's currency
    best_priority: int
    big: bool
    restricted: bool
    cands: list[Candidate]   # the candidates the model had
    clock: Clock


class Formulation(Protocol):
    """What differs between placing now and scheduling over time.  The driver
    calls, in this order: select, is_big, constrain (once, before any solve),
    objective, start_phase2, answer, conclude; a formulation keeps what an earlier
    call built for a later one (the model's groups, the cost scale, the solver
    that answered)."""
    words: Words
    each_rack: bool          # every rack its own group (exact per rack)
    large: int               # (candidate, group) pairs above which the model is cut down
    work_per_unit: float     # deterministic seconds per unit of a deterministic --time-limit
    reports_bound: bool
    tolerance: float         # how much cheaper the baseline must be to replace the answer

    def select(self, cands: list[Candidate]) -> list[Candidate]: ...
    def is_big(self, pairs: int, restricted: bool) -> bool: ...
    def restricted_note(self, kept: int, keep: int) -> str: ...
    def constrain(self, model: cp_model.CpModel, v: Vars, cands: list[Candidate], groups: list[RackGroup],
                  cgroups: list[list[int]], of_rack: list[int], hint: Choice) -> None: ...
    def objective(self, model: cp_model.CpModel, v: Vars, cands: list[Candidate]) -> tuple[object, float]: ...
    def start_phase2(self, model: cp_model.CpModel, v: Vars, cands: list[Candidate], phase1: cp_model.CpSolver,
                     hint: Choice, best_priority: int) -> Choice | None: ...
    def answer(self, solved: cp_model.CpSolver, v: Vars, cands: list[Candidate], cgroups: list[list[int]],
               groups: list[RackGroup]) -> tuple[Choice, list[str], bool]: ...
    def conclude(self, choice: Choice, phases: Phases, rival: Choice | None, packed_all: bool,
                 notes: list[str]) -> Choice: ...


def on_snapshot(problem: Problem) -> Problem:
    """The problem on a fresh ledger of the fleet as its ledger leaves it: the
    model sees that fleet, so the baselines and the packing see it too."""
    return problem.sub(problem.order, problem.candidates, ledger=RackLedger(problem.fleet))


def solve(problem: Problem, form: Formulation) -> Choice:
    config = problem.config
    start = time.perf_counter()
    began = start if config.began is None else config.began
    clock = Clock(config, jobs=len(problem.jobs), work_per_unit=form.work_per_unit)
    hint = problem.better(Greedy().decide(problem), FirstFit().decide(problem))
    if problem.horizon is None:
        hint = problem.better(hint, densest_first(problem))
    cands = form.select(problem.candidates)
    if not cands:
        hint.status = "OPTIMAL"
        if form.reports_bound:
            hint.objective_value = hint.best_bound = float(hint.objective_value)
            hint.priority_bound = problem.priority(hint)
            hint.gap = 0.0
        hint.solve_time_s = time.perf_counter() - start
        return hint
    if clock.spent():
        hint.status = "FEASIBLE"
        hint.notes = [f"the time limit was used up {time.perf_counter() - began:.1f} s into the command, before "
                      f"the search began: the better {form.words.baseline} is returned"]
        hint.solve_time_s = time.perf_counter() - start
        return hint
    budget = clock.budget()
    groups, of_rack = rack_groups(problem.fleet, each_rack=form.each_rack)
    cgroups = candidate_groups(cands, of_rack)
    notes: list[str] = []
    restricted = sum(len(g) for g in cgroups) > form.large
    if restricted:
        jobs_with = len({c.job for c in cands})
        keep = max(1, min(KEEP_PER_JOB, form.large // (KEEP_GROUPS * max(jobs_with, 1))))
        cands, cgroups = restrict(cands, cgroups, hint, groups, of_rack, problem.costs, keep)
        notes.append(form.restricted_note(len(cands), keep))
    pairs = sum(len(g) for g in cgroups)
    big = form.is_big(pairs, restricted)
    if restricted and pairs > HUGE_MODEL and problem.horizon is None:
        # Even cut down, the whole model found nothing beyond its hint here, and
        # its memory pushed the peak past the rest of the solve's: the search
        # takes the whole limit, from the baseline.  (Placing now only: the
        # horizon model's verdict reads its phases.)
        notes.append(f"the cut-down model would still have {pairs:,} (candidate, rack group) pairs: the whole-fleet "
                     "phases are skipped and the neighbourhood search starts from the baseline answer")
        idle = cp_model.CpSolver()
        choice = Choice(dict(hint.placed), objective_value=hint.objective_value)
        phases = Phases(idle, cp_model.UNKNOWN, idle, cp_model.UNKNOWN, False, 0.0, problem.priority(hint), True,
                        True, cands, clock)
        choice = form.conclude(choice, phases, None, True, notes)
        choice.solve_time_s = time.perf_counter() - start
        choice.notes = notes
        return choice

    # Phase 1: placed priority.
    model = cp_model.CpModel()
    v = variables(model, cands, groups, cgroups)
    form.constrain(model, v, cands, groups, cgroups, of_rack, hint)
    placed_priority = sum(problem.jobs[c.job].priority * x for c, x in zip(cands, v.take))
    model.maximize(placed_priority)
    share, quick, spent = 0.4, None, 0.0
    if big:
        # Presolve alone can outlast the limit here: a short pass without it gives
        # CP-SAT an answer of its own within seconds, phase 1 starts from it, and
        # it stands if phase 1 finds nothing better in time.
        quick = clock.solver(0.1 * budget)
        quick.parameters.cp_model_presolve = False
        quick_status = quick.solve(model, progress(config, 1, began, 1.0))
        if quick_status in ANSWERS:
            model.clear_hints()
            hint_from(model, v, quick)
            spent = clock.used(quick)
        else:
            quick = None
        share = 0.3
    phase1 = clock.solver(share * budget)
    status1 = phase1.solve(model, progress(config, 1, began, 1.0))
    if status1 not in ANSWERS and quick is not None:
        phase1, status1 = quick, quick_status
    if status1 == cp_model.MODEL_INVALID:         # a bug, not a result (DESIGN.md: statuses)
        raise SolverError(f"CP-SAT rejected the model: {phase1.solution_info() or 'MODEL_INVALID'}")
    if status1 not in ANSWERS and (big or problem.horizon is not None or clock.spent()):
        return no_answer(hint, form, start)
    if status1 not in ANSWERS:
        # Phase 1 ran out of its share before reporting even its hint (the baseline,
        # feasible): phase 2 holds the baseline's priority and works on the objective.
        best_priority = problem.priority(hint)
        notes.append(f"the priority phase found no {form.words.answer} in its share of the time; the objective "
                     f"phase holds the {form.words.baseline}'s placed priority {best_priority}")
    else:
        best_priority = round(phase1.objective_value)
        if status1 != cp_model.OPTIMAL:
            every = sum(problem.jobs[j].priority for j in problem.order)
            notes.append(f"placed priority {best_priority} is not proven optimal "
                         f"(bound {min(every, phase1.best_objective_bound):.0f})")

    # Phase 2: the objective, with placed priority held at its best.
    model.clear_hints()
    model.add(placed_priority >= best_priority)
    objective, step = form.objective(model, v, cands)
    model.minimize(objective)
    rival = form.start_phase2(model, v, cands, phase1, hint, best_priority)
    phase2, status2 = phase1, status1
    if not big:
        phase2 = clock.solver(clock.rest(max(0.2 * budget, budget - clock.used(phase1))))
        status2 = phase2.solve(model, progress(config, 2, began, step))
        if status2 == cp_model.MODEL_INVALID:
            raise SolverError(f"CP-SAT rejected the objective model: {phase2.solution_info() or 'MODEL_INVALID'}")
    phase2_ok = not big and status2 in ANSWERS
    if not phase2_ok and status1 not in ANSWERS:
        return no_answer(hint, form, start)
    if not big and not phase2_ok:
        notes.append(f"the objective phase found no {form.words.answer} in time; {form.words.priority_only}")

    choice, packing_notes, packed_all = form.answer(phase2 if phase2_ok else phase1, v, cands, cgroups, groups)
    choice.objective_value = problem.value(choice)
    if rival is not None and problem.priority(rival) >= problem.priority(choice) \
            and rival.objective_value < choice.objective_value - form.tolerance:
        choice = Choice(dict(rival.placed), objective_value=rival.objective_value)
        notes.append(f"the {form.words.baseline} beat the solver's within the time limit and is returned")
    notes.extend(packing_notes)
    phases = Phases(phase1, status1, phase2, status2, phase2_ok, spent + clock.used(phase1), best_priority,
                    big, restricted, cands, clock)
    choice = form.conclude(choice, phases, rival, packed_all, notes)
    choice.solve_time_s = time.perf_counter() - start
    choice.notes = notes
    return choice


def no_answer(hint: Choice, form: Formulation, start: float) -> Choice:
    """CP-SAT found nothing in time: the baseline is the answer (UNKNOWN means none)."""
    hint.status = "FEASIBLE"
    hint.notes = [f"CP-SAT found no {form.words.answer} in time; the better {form.words.baseline} is returned"]
    hint.solve_time_s = time.perf_counter() - start
    return hint


def restrict(cands: list[Candidate], cgroups: list[list[int]], hint: Choice, groups: list[RackGroup],
             of_rack: list[int], costs: Costs, per_job: int) -> tuple[list[Candidate], list[list[int]]]:
    """For large instances: per job, the baseline's candidate plus the cheapest and
    the smallest others; per candidate, the baseline's rack groups plus the roomiest."""
    in_hint = {a.candidate.index: a for a in hint.placed.values()}
    position = {c.index: i for i, c in enumerate(cands)}
    keep: list[int] = []
    for mine in by_job(cands).values():
        idx = [position[c.index] for c in mine]
        chosen = [i for i in idx if cands[i].index in in_hint]
        cheap = sorted(idx, key=lambda i: (costs[cands[i]], cands[i].chips))
        small = sorted(idx, key=lambda i: (cands[i].chips, costs[cands[i]]))
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
        a = in_hint.get(c.index)
        used = {of_rack[r] for r in a.racks} if a is not None else set()
        kept = set(used)
        for u in c.units:       # a split: each pool's roomiest groups for its own type
            mine = {of_rack[r] for r in u.racks} if c.pools else cgroups[i]
            kept.update(sorted(mine, key=lambda g: -groups[g].free.get(u.chip_type, 0) * groups[g].size)[:KEEP_GROUPS])
        out_c.append(c)
        out_g.append(sorted(kept))
    return out_c, out_g


class _Progress(cp_model.CpSolverSolutionCallback):
    """Records (seconds since the command began, phase, objective, bound) per
    solution: phase 1 is placed priority, phase 2 the objective (phase 3, the
    neighbourhood search's objective, comes from `record`)."""

    def __init__(self, sink: list, phase: int, began: float, step: float) -> None:
        super().__init__()
        self.sink, self.phase, self.began, self.step = sink, phase, began, step

    def on_solution_callback(self) -> None:
        self.sink.append((time.perf_counter() - self.began, self.phase, self.objective_value * self.step,
                          self.best_objective_bound * self.step))


def record(config: SolverConfig, phase: int, objective: float, bound: float | None = None) -> None:
    """One entry of `config.trace` from outside a CP-SAT solve (phase 3: the
    neighbourhood search, whose rounds are solves of their own)."""
    if config.trace is not None:
        began = time.perf_counter() if config.began is None else config.began
        config.trace.append((time.perf_counter() - began, phase, objective, bound))


def progress(config: SolverConfig, phase: int, began: float, step: float) -> _Progress | None:
    """The solution callback that feeds `config.trace`, if one is wanted; `step`
    turns the model's integers back into objective units."""
    return None if config.trace is None else _Progress(config.trace, phase, began, step)
