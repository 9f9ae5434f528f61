"""`trnsched simulate`: event-driven replay of a job trace under a policy.

Jobs arrive over time (arrival_h) and run for their chosen candidate's predicted
duration.  The policy decides at arrival and completion events, batched: the
first event opens a decision window of `batch_s` seconds, every arrival and
completion inside it is taken in, and the policy decides once at the window's
end for all queued jobs.  A job the policy does not start stays queued for the
next decision.

Policies:
- fifo: strict arrival order; the head of the queue takes its first candidate
  that fits (fewest chips, chip types in fleet order); when the head does not
  fit nothing behind it starts (no backfilling).
- greedy: queued jobs by priority, then arrival; each takes its cheapest
  candidate (for the objective) that fits now, so small jobs backfill.
- cpsat: the CP-SAT model on the queued jobs and the fleet as it is now
  (running jobs' chips busy): most placed priority, then the objective, within
  `time_limit` deterministic seconds per decision.  When greedy already starts
  every queued job that fits at all on its cheapest candidate, that is also
  CP-SAT's optimum and the solver is not called.

Each decision is a Problem like any other (trnsched/problem.py): the queued
jobs in arrival order, their candidates that can still meet their deadlines,
cheapest first, on the ledger of the racks as the running jobs leave them; the
policy comes from the registry (trnsched/policies) and the loop starts what it
chose.

Deadlines are hard: a job only starts on a candidate that ends by its
deadline, and a job that no candidate can get there in time any more leaves the
queue and is reported (`jobs_missed_deadline`).

Candidates are generated and scored once for the whole trace against the
empty fleet; a decision only checks which of them fit the racks' free chips and
power headroom now.  A job with no candidate at all (it cannot run on the fleet
however empty) is reported and never queued.

Energy: each job's predicted energy at its chosen candidate (busy power, PUE
included), plus the fleet's idle draw (idle chips at idle power, times PUE)
over the replay.  Cost: each job's chip-hours at the chip type's price.
"""
from __future__ import annotations

import heapq
import time
from typing import Callable

from trnsched.candidates import Candidate, by_job, generate
from trnsched.inputs.errors import InputError
from trnsched.inputs.fleet import Fleet, check_fleet
from trnsched.inputs.jobs import Job, check_jobs
from trnsched.inputs.schema import SimulateArguments
from trnsched.inputs.validate import check_arguments
from trnsched.interrupts import INTERRUPTS
from trnsched.objective import OBJECTIVES, prune_and_price
from trnsched.policies import POLICIES, offered
from trnsched.problem import Problem, SolverConfig
from trnsched.racks import EPS, RackLedger
from trnsched.replay.figures import Run, SimResult, utilisation


def simulate(jobs: list[Job], fleet: Fleet, *, policy: str = "cpsat", objective: str = "energy",
             batch_s: float = 60.0, time_limit: float = 0.5, workers: int = 1, seed: int = 0,
             buckets: int = 100, progress: Callable[[int], None] | None = None) -> SimResult:
    """Replay `jobs` (by arrival_h) on `fleet` under `policy`; `progress`, if
    given, is called with the number of jobs that arrived since the last call."""
    check_arguments(SimulateArguments, policy=policy, objective=objective, batch_s=batch_s, time_limit=time_limit,
                    workers=workers, seed=seed, buckets=buckets)
    if policy not in offered("replay"):
        raise InputError(f"must be one of {', '.join(offered('replay'))}, got {policy!r}", field="policy")
    if objective not in OBJECTIVES:
        raise InputError(f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}", field="objective")
    check_fleet(fleet)
    check_jobs(jobs, fleet.chip_types)
    began = time.perf_counter()
    cset = generate(jobs, fleet)
    cands, costs = prune_and_price(cset.candidates, objective)
    options = by_job(cands)
    rank = {t: i for i, t in enumerate(fleet.types_present())}
    for mine in options.values():
        mine.sort(key=lambda c: (costs[c], c.chips, tuple(rank[u.chip_type] for u in c.units)))
    config = SolverConfig(time_limit, workers, seed, greedy_first=True, deterministic=True)
    decider = POLICIES[policy]
    ledger = RackLedger(fleet)

    def in_time(j: int, now: float) -> list[Candidate]:
        """The job's candidates that still meet its deadline if started now."""
        due = jobs[j].deadline_h
        return options[j] if due is None else [c for c in options[j] if now + c.duration_h <= due + EPS]

    order = sorted(range(len(jobs)), key=lambda j: (jobs[j].arrival_h, j))
    never = [jobs[j] for j in order if j not in options]
    arrivals = [j for j in order if j in options]
    ending: list[tuple[float, int, int]] = []          # (end_h, sequence, run index)
    runs: list[Run] = []
    expired: list[Job] = []
    queue: list[int] = []                               # in arrival order
    window_h = batch_s / 3600.0
    nxt = decisions = solver_calls = 0
    decide_s = 0.0
    steps: list[tuple[float, str, int]] = []            # busy chips per type over time: (time, type, +/-chips)
    while nxt < len(arrivals) or ending or queue:
        INTERRUPTS.check()      # Ctrl-C (under interrupts.catching) ends the replay between events
        upcoming = [jobs[arrivals[nxt]].arrival_h] if nxt < len(arrivals) else []
        if ending:
            upcoming.append(ending[0][0])
        if not upcoming:
            raise RuntimeError("jobs are queued but nothing runs or arrives: a policy left a job that fits an "
                               "empty fleet")   # cannot happen: every queued job has a candidate
        now = min(upcoming) + window_h
        arrived = 0
        while nxt < len(arrivals) and jobs[arrivals[nxt]].arrival_h <= now + EPS:
            queue.append(arrivals[nxt])
            nxt += 1
            arrived += 1
        while ending and ending[0][0] <= now + EPS:
            _, _, k = heapq.heappop(ending)
            ledger.release(runs[k].candidate.job)
            steps.extend((runs[k].end_h, u.chip_type, -u.chips) for u in runs[k].candidate.units)
        # A job whose deadline no candidate can meet any more leaves the queue.
        late = {j for j in queue if jobs[j].deadline_h is not None and not in_time(j, now)}
        if late:
            expired.extend(jobs[j] for j in queue if j in late)
            queue = [j for j in queue if j not in late]
        if queue:
            decisions += 1
            t0 = time.perf_counter()
            problem = Problem(jobs, [c for j in queue for c in in_time(j, now)], costs, ledger, list(queue), config)
            choice = decider.decide(problem)
            solver_calls += choice.solver_calls
            decide_s += time.perf_counter() - t0
            for j, a in choice.placed.items():
                ledger.commit(a.candidate, a.racks)
                run = Run(jobs[j], now, now + a.candidate.duration_h, a.candidate, a.racks)
                heapq.heappush(ending, (run.end_h, len(runs), len(runs)))
                runs.append(run)
                steps.extend((now, u.chip_type, u.chips) for u in a.candidate.units)
            queue = [j for j in queue if j not in choice.placed]
        if progress is not None and arrived:
            progress(arrived)
    runs.sort(key=lambda r: (r.start_h, r.job.id))
    busy_chip_h, series, bucket_h, idle_kwh = utilisation(fleet, runs, steps, buckets)
    notes = [f"{len(never)} job(s) cannot run on this fleet at all and were never queued"] if never else []
    if expired:
        notes.append(f"{len(expired)} job(s) waited past the point where any placement could meet their deadline "
                     "and were dropped: " + ", ".join(j.id for j in expired[:5]) + (" ..." if len(expired) > 5 else ""))
    return SimResult(policy, objective, fleet, runs, never, expired, decisions, solver_calls, decide_s,
                     time.perf_counter() - began, idle_kwh, busy_chip_h, series, bucket_h, notes)
