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
- cpsat: solver.py's CP-SAT model on the queued jobs and the fleet as it is
  now (running jobs' chips busy): most placed priority, then the objective,
  within `time_limit` deterministic seconds per decision.  When greedy already
  starts every queued job that fits at all on its cheapest candidate, that is
  also CP-SAT's optimum and the solver is not called.

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
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from trnsched.candidates import Candidate, generate, prune_for
from trnsched.errors import InputError
from trnsched.fleet import Fleet
from trnsched.jobs import Job
from trnsched.solver import (OBJECTIVES, Packer, SubProblem, candidate_costs, cost_map, cpsat, first_fit_order,
                             rack_watts_per_chip)

SIM_POLICIES = ("cpsat", "greedy", "fifo")
EPS = 1e-9


@dataclass
class Run:
    job: Job
    start_h: float
    end_h: float
    candidate: Candidate
    racks: dict[int, int]

    @property
    def wait_h(self) -> float:
        return self.start_h - self.job.arrival_h

    @property
    def completion_h(self) -> float:
        return self.end_h - self.job.arrival_h


@dataclass
class SimResult:
    policy: str
    objective: str
    fleet: Fleet
    runs: list[Run]
    never: list[Job]                       # no candidate on this fleet
    expired: list[Job]                     # dropped: the deadline could no longer be met
    decisions: int
    solver_calls: int
    decide_s: float                        # wall time spent deciding
    wall_s: float
    idle_kwh: float
    busy_chip_h: dict[str, float]
    series: dict[str, list[float]]         # chip type -> mean utilisation per bucket
    bucket_h: float
    notes: list[str] = field(default_factory=list)

    def figures(self) -> dict:
        comp = np.array([r.completion_h for r in self.runs]) if self.runs else np.zeros(1)
        wait = np.array([r.wait_h for r in self.runs]) if self.runs else np.zeros(1)
        first = min((r.job.arrival_h for r in self.runs), default=0.0)
        last = max((r.end_h for r in self.runs), default=0.0)
        job_kwh = sum(r.candidate.energy_kwh for r in self.runs)
        totals = self.fleet.totals()
        span = max(last - first, EPS)
        return {
            "policy": self.policy, "objective": self.objective,
            "jobs": len(self.runs) + len(self.never) + len(self.expired), "jobs_run": len(self.runs),
            "jobs_never_placeable": len(self.never), "jobs_missed_deadline": len(self.expired),
            "completion_h": _stats(comp), "wait_h": _stats(wait),
            "makespan_h": last - first,
            "energy_kwh": {"jobs": job_kwh, "idle": self.idle_kwh, "total": job_kwh + self.idle_kwh},
            "cost_usd": sum(r.candidate.cost_usd for r in self.runs),
            "utilisation": {t: self.busy_chip_h.get(t, 0.0) / (v["free"] * span) if v["free"] else 0.0
                            for t, v in totals.items()},
            "chip_hours": dict(self.busy_chip_h),
            "runs_per_chip_type": {t: sum(1 for r in self.runs if r.candidate.chip_type == t) for t in totals},
            "decisions": self.decisions, "solver_calls": self.solver_calls,
            "decide_s": self.decide_s, "wall_s": self.wall_s,
            "utilisation_series": {"bucket_h": self.bucket_h, "start_h": first, "by_chip_type": self.series},
            "notes": self.notes,
        }


def _stats(x: np.ndarray) -> dict[str, float]:
    return {"mean": float(x.mean()), "p50": float(np.percentile(x, 50)), "p99": float(np.percentile(x, 99)),
            "max": float(x.max())}


class _State:
    """Free chips and power headroom per rack as jobs start and end."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.packer = Packer(fleet)
        self.running: list[dict[str, int]] = [{} for _ in fleet.racks]
        self.watts = [0.0] * len(fleet.racks)

    def start(self, c: Candidate, alloc: dict[int, int], sign: int = 1) -> None:
        self.packer.commit(c, {r: sign * n for r, n in alloc.items()})
        per_chip = rack_watts_per_chip(c, self.fleet)
        for r, n in alloc.items():
            self.running[r][c.chip_type] = self.running[r].get(c.chip_type, 0) + sign * n
            self.watts[r] += sign * per_chip * n

    def end(self, c: Candidate, alloc: dict[int, int]) -> None:
        self.start(c, alloc, sign=-1)

    def snapshot(self) -> Fleet:
        """The fleet as it is now: running jobs' chips busy, drawing what they draw."""
        busy = {r: chips for r, chips in enumerate(self.running) if any(chips.values())}
        return self.fleet.with_busy(busy, {r: self.watts[r] for r in busy})

    def fits(self, c: Candidate) -> dict[int, int] | None:
        return self.packer.allocate(c)

    def start_first(self, cands: list[Candidate]) -> tuple[Candidate, dict[int, int]] | None:
        """Start the first of these candidates that fits now; None if none does."""
        for c in cands:
            alloc = self.fits(c)
            if alloc is not None:
                self.start(c, alloc)
                return c, alloc
        return None


Decide = Callable[[list[int], _State, float], list[tuple[int, Candidate, dict[int, int]]]]


def simulate(jobs: list[Job], fleet: Fleet, *, policy: str = "cpsat", objective: str = "energy",
             batch_s: float = 60.0, time_limit: float = 0.5, workers: int = 1, seed: int = 0,
             buckets: int = 100, progress: Callable[[int], None] | None = None) -> SimResult:
    """Replay `jobs` (by arrival_h) on `fleet` under `policy`; `progress`, if
    given, is called with the number of jobs that arrived since the last call."""
    if policy not in SIM_POLICIES:
        raise InputError(f"must be one of {', '.join(SIM_POLICIES)}, got {policy!r}", field="policy")
    if objective not in OBJECTIVES:
        raise InputError(f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}", field="objective")
    began = time.perf_counter()
    cset = generate(jobs, fleet)
    cands = prune_for(cset.candidates, candidate_costs(cset.candidates, objective))
    cost_of = cost_map(cands, objective)
    by_job: dict[int, list[Candidate]] = {}
    for c in cands:
        by_job.setdefault(c.job, []).append(c)
    rank = {t: i for i, t in enumerate(fleet.types_present())}
    for j, mine in by_job.items():
        # fifo's order is first-fit's; greedy's is the objective's.
        mine.sort(key=lambda c: (cost_of[id(c)], c.chips, rank[c.chip_type]))
    by_first_fit = {j: sorted(mine, key=first_fit_order(fleet)) for j, mine in by_job.items()}

    state = _State(fleet)
    counters = {"solver_calls": 0}

    def in_time(cs: list[Candidate], j: int, now: float) -> list[Candidate]:
        """The candidates that still meet the job's deadline if started now."""
        due = jobs[j].deadline_h
        return cs if due is None else [c for c in cs if now + c.duration_h <= due + EPS]

    def decide_fifo(queue: list[int], st: _State, now: float):
        out = []
        for j in queue:                         # queue is in arrival order
            got = st.start_first(in_time(by_first_fit[j], j, now))
            if got is None:
                break                           # the head waits; so does everyone behind it
            out.append((j, *got))
        return out

    def greedy_pass(queue: list[int], st: _State, now: float):
        out = []
        for j in sorted(queue, key=lambda j: (-jobs[j].priority, jobs[j].arrival_h, j)):
            got = st.start_first(in_time(by_job[j], j, now))
            if got is not None:
                out.append((j, *got))
        return out

    def decide_cpsat(queue: list[int], st: _State, now: float):
        options = {j: in_time(by_job[j], j, now) for j in queue}
        fitting = [j for j in queue if any(st.fits(c) is not None for c in options[j])]
        if not fitting:
            return []
        trial = greedy_pass(fitting, st, now)
        if len(trial) == len(fitting) and all(c is options[j][0] for j, c, _ in trial):
            return trial                        # every job that fits at all, each on its cheapest: optimal
        for _, c, alloc in trial:
            st.end(c, alloc)
        sub = SubProblem.of(jobs, fitting, options, cost_of)
        counters["solver_calls"] += 1
        choice = cpsat(sub.jobs, st.snapshot(), sub.cands, sub.cost_of, time_limit=time_limit, workers=workers,
                       seed=seed)
        out = []
        for k, a in sorted(choice.placed.items()):
            c = sub.original[id(a.candidate)]
            st.start(c, a.racks)
            out.append((fitting[k], c, a.racks))
        return out

    decide: Decide = {"fifo": decide_fifo, "greedy": greedy_pass, "cpsat": decide_cpsat}[policy]

    order = sorted(range(len(jobs)), key=lambda j: (jobs[j].arrival_h, j))
    never = [jobs[j] for j in order if j not in by_job]
    arrivals = [j for j in order if j in by_job]
    ending: list[tuple[float, int, int]] = []          # (end_h, sequence, run index)
    runs: list[Run] = []
    expired: list[Job] = []
    queue: list[int] = []
    window_h = batch_s / 3600.0
    nxt = 0
    decisions = 0
    decide_s = 0.0
    # Busy chips per type over time, for utilisation: (time, type, +/-chips).
    steps: list[tuple[float, str, int]] = []
    while nxt < len(arrivals) or ending or queue:
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
            state.end(runs[k].candidate, runs[k].racks)
            steps.append((runs[k].end_h, runs[k].candidate.chip_type, -runs[k].candidate.chips))
        # A job whose deadline no candidate can meet any more leaves the queue.
        late = {j for j in queue if jobs[j].deadline_h is not None and not in_time(by_job[j], j, now)}
        if late:
            expired.extend(jobs[j] for j in queue if j in late)
            queue = [j for j in queue if j not in late]
        if queue:
            decisions += 1
            t0 = time.perf_counter()
            started = decide(queue, state, now)
            decide_s += time.perf_counter() - t0
            gone = set()
            for j, c, alloc in started:
                run = Run(jobs[j], now, now + c.duration_h, c, alloc)
                heapq.heappush(ending, (run.end_h, len(runs), len(runs)))
                runs.append(run)
                steps.append((now, c.chip_type, c.chips))
                gone.add(j)
            queue = [j for j in queue if j not in gone]
        if progress is not None and arrived:
            progress(arrived)
    runs.sort(key=lambda r: (r.start_h, r.job.id))
    busy_chip_h, series, bucket_h, idle_kwh = _utilisation(fleet, runs, steps, buckets)
    notes = [f"{len(never)} job(s) cannot run on this fleet at all and were never queued"] if never else []
    if expired:
        notes.append(f"{len(expired)} job(s) waited past the point where any placement could meet their deadline "
                     "and were dropped: " + ", ".join(j.id for j in expired[:5]) + (" ..." if len(expired) > 5 else ""))
    return SimResult(policy, objective, fleet, runs, never, expired, decisions, counters["solver_calls"], decide_s,
                     time.perf_counter() - began, idle_kwh, busy_chip_h, series, bucket_h, notes)


def _utilisation(fleet: Fleet, runs: list[Run], steps: list[tuple[float, str, int]], buckets: int
                 ) -> tuple[dict[str, float], dict[str, list[float]], float, float]:
    """Busy chip-hours per type, mean utilisation per type in `buckets` equal
    slices of the replay, and the idle chips' energy over it."""
    totals = fleet.totals()
    if not runs:
        return {}, {t: [] for t in totals}, 0.0, 0.0
    first = min(r.job.arrival_h for r in runs)
    last = max(r.end_h for r in runs)
    bucket_h = max(last - first, EPS) / buckets
    busy_h: dict[str, float] = {}
    series = {t: [0.0] * buckets for t in totals}
    level: dict[str, int] = {}
    prev = first
    for t_now, chip, delta in sorted(steps, key=lambda s: (s[0], s[2])):
        for t, n in level.items():
            if n:
                _spread(series[t], first, bucket_h, prev, t_now, n)
                busy_h[t] = busy_h.get(t, 0.0) + n * (t_now - prev)
        prev = t_now
        level[chip] = level.get(chip, 0) + delta
    for t, row in series.items():
        free = totals[t]["free"]
        series[t] = [round(v / (free * bucket_h), 4) if free else 0.0 for v in row]
    idle_kwh = 0.0
    span = last - first
    for t, v in totals.items():
        chip = fleet.chip_types[t]
        idle_chip_h = v["free"] * span - busy_h.get(t, 0.0)
        idle_kwh += idle_chip_h * chip.idle_w / 1000.0 * fleet.pue
    return busy_h, series, bucket_h, idle_kwh


def _spread(row: list[float], first: float, width: float, a: float, b: float, n: int) -> None:
    """Add n chips busy over [a, b) to the buckets it overlaps, in chip-hours."""
    if b <= a:
        return
    i = min(len(row) - 1, int((a - first) / width))
    while i < len(row) and a < b:
        edge = first + (i + 1) * width
        upto = min(b, edge) if i < len(row) - 1 else b
        row[i] += n * (upto - a)
        a = upto
        i += 1
