"""One job at a time, in order: how every policy but CP-SAT places jobs.

`place_in_order` places now: each job on the first of its candidates, in the
policy's order, that fits the room left.  `schedule_in_order` schedules over a
horizon on a Timeline: each job at the earliest start each of its candidates
can have before its deadline, and the policy picks among those.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

from trnsched.candidates import Candidate
from trnsched.inputs.fleet import Fleet
from trnsched.inputs.jobs import Job
from trnsched.problem import Allocation, Choice, Problem
from trnsched.racks import RackLedger

CandidateKey = Callable[[Candidate], tuple]
Option = tuple[Candidate, float, dict[int, int]]            # candidate, start, racks
Pick = Callable[[Job, list[Option]], Option | None]


def first_fit_key(fleet: Fleet) -> CandidateKey:
    """First-fit's candidate order: fewest chips, chip types in fleet order, fewest racks."""
    rank = {t: i for i, t in enumerate(fleet.types_present())}
    return lambda c: (c.chips, tuple(rank[u.chip_type] for u in c.units), c.max_racks)


def first_that_fits(ledger: RackLedger, cands: Iterable[Candidate]) -> tuple[Candidate, dict[int, int]] | None:
    """The first of these candidates that fits the ledger's room, and where."""
    for c in cands:
        racks = ledger.fit(c)
        if racks is not None:
            return c, racks
    return None


def place_in_order(problem: Problem, key: CandidateKey, jobs: list[int] | None = None,
                   stop_at_first_miss: bool = False) -> Choice:
    """Jobs in `jobs` order (default: priority, then arrival), each on its first
    candidate by `key` that fits (ties: the problem's candidate order).  With
    `stop_at_first_miss`, a job that fits nowhere stops the rest (no backfilling)."""
    start = time.perf_counter()
    ledger = problem.ledger.copy()
    placed: dict[int, Allocation] = {}
    for j in problem.job_order() if jobs is None else jobs:
        got = first_that_fits(ledger, sorted(problem.by_job.get(j, []), key=key))
        if got is None:
            if stop_at_first_miss:
                break
            continue
        c, racks = got
        ledger.commit(c, racks)
        placed[j] = Allocation(c, racks)
    choice = Choice(placed, solve_time_s=time.perf_counter() - start)
    choice.objective_value = problem.value(choice)
    return choice


def schedule_in_order(problem: Problem, key: CandidateKey, pick: Pick) -> Choice:
    """Jobs by priority, then arrival; each job's candidates by `key`, each at its
    earliest start that fits and ends by the deadline; `pick` chooses among them."""
    start = time.perf_counter()
    line = problem.timeline.copy()
    horizon = problem.horizon
    placed: dict[int, Allocation] = {}
    for j in problem.job_order():
        job = problem.jobs[j]
        options = []
        for c in sorted(problem.by_job.get(j, []), key=key):
            found = line.earliest(c, job.arrival_h, horizon.latest_start(job, c))
            if found is not None:
                options.append((c, *found))
        chosen = pick(job, options)
        if chosen is not None:
            c, when, racks = chosen
            line.commit(c, racks, when)
            placed[j] = Allocation(c, racks, when)
    choice = Choice(placed, solve_time_s=time.perf_counter() - start)
    choice.objective_value = problem.value(choice)
    return choice
