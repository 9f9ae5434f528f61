"""`solve`: jobs + fleet -> placements, unplaced jobs with reasons, totals, rack use.

The pipeline of DESIGN.md: validate (jobs.py, fleet.py) -> candidates (scored by
the core) -> prune -> choose (solver.py) -> result and explanations (here).
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from trnsched import _columns as col, schedule
from trnsched.candidates import CandidateSet, generate, prune_for
from trnsched.errors import InputError
from trnsched.fleet import Fleet, default_fleet, parse_fleet
from trnsched.jobs import Job, parse_jobs
from trnsched.solver import (OBJECTIVES, POLICIES, Choice, Packer, candidate_costs, cost_map, cpsat, first_fit, greedy,
                             rack_watts_per_chip)


@dataclass
class Placement:
    job: Job
    chip_type: str
    chips: int
    allocations: list[tuple[str, int]]
    start_h: float
    end_h: float
    metrics: dict[str, float]
    layout: dict[str, float]

    def to_dict(self) -> dict:
        return {"job": self.job.id, "chip_type": self.chip_type, "chips": self.chips,
                "allocations": [{"rack": r, "chips": n} for r, n in self.allocations],
                "start_h": _clean(self.start_h), "end_h": _clean(self.end_h),
                "layout": {k: _clean(v) for k, v in self.layout.items()},
                "metrics": {k: _clean(v) for k, v in self.metrics.items()}}


@dataclass
class Unplaced:
    job: Job
    reason: str
    kind: str          # excluded | memory | slo | deadline | rate | batch | capacity | no_room | horizon

    def to_dict(self) -> dict:
        return {"job": self.job.id, "reason": self.reason, "kind": self.kind}


@dataclass
class Result:
    policy: str
    objective: str
    status: str
    objective_value: float | None
    best_bound: float | None
    gap: float | None
    solve_time_s: float
    placements: list[Placement]
    unplaced: list[Unplaced]
    racks: list[dict]
    totals: dict
    notes: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"status": self.status, "policy": self.policy, "objective": self.objective,
                "objective_value": _clean(self.objective_value), "best_bound": _clean(self.best_bound),
                "gap": _clean(self.gap), "solve_time_s": round(self.solve_time_s, 3),
                "placements": [p.to_dict() for p in self.placements],
                "unplaced": [u.to_dict() for u in self.unplaced],
                "totals": {k: _clean(v) for k, v in self.totals.items()},
                "racks": self.racks, "notes": self.notes, "stats": self.stats}


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return round(x, 6) if math.isfinite(x) else None
    return x


def _metrics(job: Job, v: dict) -> dict[str, float]:
    common = {"power_kw": v["power_kw"], "energy_kwh": v["energy_kwh"], "cost_usd": v["cost_usd"],
              "duration_h": v["duration_h"], "mem_per_chip_gb": v["mem_per_chip"] / 1e9}
    if job.is_train:
        return {"step_time_s": v["step_time_s"], "tokens_per_s": v["tokens_per_s"], "mfu": v["mfu"], **common}
    return {"ttft_ms": v["ttft_s"] * 1e3, "tpot_ms": v["tpot_s"] * 1e3, "batch": v["batch"],
            "output_tokens_per_s": v["tokens_per_s"], "replicas": v["replicas"],
            "replicas_needed": v["replicas_needed"], **common}


def _layout(job: Job, v: dict) -> dict[str, float]:
    keys = ("tp", "pp", "dp", "ep", "recompute") if job.is_train else ("tp", "pp", "replicas", "batch")
    return {k: v[k] for k in keys}


def solve(jobs: Sequence[Job] | Any, fleet: Fleet | Any = None, *, objective: str = "energy",
          policy: str = "cpsat", time_limit: float = 10.0, workers: int = 2, seed: int = 0,
          trace: list | None = None, horizon_h: float | None = None, time_weight: float = 1.0) -> Result:
    """Place jobs on a fleet (the built-in default fleet when None).  `jobs` may be
    Job objects or the decoded jobs.json; `fleet` a Fleet or the decoded fleet.json.
    `trace` (CP-SAT only) receives (seconds since this call, phase, objective, bound)
    per solution found.  With `horizon_h`, jobs are also scheduled in time
    (schedule.py): each starts at or after its arrival and within the horizon, and
    the objective adds `time_weight` times the priority-weighted completion time."""
    began = time.perf_counter()
    if horizon_h is not None and not (isinstance(horizon_h, (int, float)) and math.isfinite(horizon_h)
                                      and horizon_h > 0):
        raise InputError(f"must be a positive number of hours, got {horizon_h!r}", field="horizon")
    if not (isinstance(time_weight, (int, float)) and math.isfinite(time_weight) and time_weight >= 0):
        raise InputError(f"must be a non-negative number, got {time_weight!r}", field="time_weight")
    if objective not in OBJECTIVES:
        raise InputError(f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}", field="objective")
    if policy not in POLICIES:
        raise InputError(f"must be one of {', '.join(POLICIES)}, got {policy!r}", field="policy")
    if fleet is None:
        fleet = default_fleet()
    elif not isinstance(fleet, Fleet):
        fleet = parse_fleet(fleet)
    if not (isinstance(jobs, (list, tuple)) and all(isinstance(j, Job) for j in jobs)):
        jobs = parse_jobs(jobs, chip_names=fleet.chip_types)
    jobs = list(jobs)
    cset = generate(jobs, fleet)
    cset.candidates = prune_for(cset.candidates, candidate_costs(cset.candidates, objective))
    cost_of = cost_map(cset.candidates, objective)
    if horizon_h is not None:
        lam = schedule.completion_weight(jobs, cset.candidates, cost_of, horizon_h, time_weight)
        run = {"cpsat": functools.partial(schedule.cpsat, time_limit=time_limit, workers=workers, seed=seed,
                                          trace=trace, began=began),
               "greedy": schedule.greedy, "first-fit": schedule.first_fit}[policy]
        choice = run(jobs, fleet, cset.candidates, cost_of, horizon_h, lam)
        return _result(jobs, fleet, cset, choice, policy, objective, horizon_h=horizon_h, lam=lam)
    if policy == "cpsat":
        choice = cpsat(jobs, fleet, cset.candidates, cost_of, time_limit=time_limit, workers=workers, seed=seed,
                       trace=trace, began=began)
    elif policy == "greedy":
        choice = greedy(jobs, fleet, cset.candidates, cost_of)
    else:
        choice = first_fit(jobs, fleet, cset.candidates, cost_of)
    return _result(jobs, fleet, cset, choice, policy, objective)


def _result(jobs: list[Job], fleet: Fleet, cset: CandidateSet, choice: Choice, policy: str,
            objective: str, horizon_h: float | None = None, lam: float = 0.0) -> Result:
    placements = []
    for j, alloc in sorted(choice.placed.items()):
        c = alloc.candidate
        job = jobs[j]
        start = job.arrival_h if alloc.start_h is None else alloc.start_h
        placements.append(Placement(job, c.chip_type, c.chips,
                                    [(fleet.racks[r].id, n) for r, n in sorted(alloc.racks.items())],
                                    start, start + c.duration_h, _metrics(job, c.values), _layout(job, c.values)))
    explain = Explainer(jobs, fleet, cset, choice) if horizon_h is None else \
        HorizonExplainer(jobs, fleet, cset, choice, horizon_h)
    unplaced = [explain(j) for j in range(len(jobs)) if j not in choice.placed]
    racks = rack_usage(fleet, choice, None if horizon_h is None else schedule.timeline_of(fleet, choice).peak())
    totals = {"jobs_placed": len(placements), "jobs_unplaced": len(unplaced),
              "priority_placed": sum(p.job.priority for p in placements),
              "priority_total": sum(j.priority for j in jobs),
              "chips_used": sum(p.chips for p in placements),
              "energy_kwh": sum(p.metrics["energy_kwh"] for p in placements),
              "cost_usd": sum(p.metrics["cost_usd"] for p in placements),
              "power_kw": sum(p.metrics["power_kw"] for p in placements)}
    if horizon_h is not None:
        waits = [p.start_h - p.job.arrival_h for p in placements]
        totals.update({"horizon_h": horizon_h, "makespan_h": max((p.end_h for p in placements), default=0.0),
                       "mean_wait_h": sum(waits) / len(waits) if waits else 0.0,
                       "weighted_completion_h": sum(p.job.priority * (p.end_h - p.job.arrival_h)
                                                    for p in placements),
                       "completion_weight": lam})
    stats = {"candidates_scored": cset.scored, "candidates_kept": len(cset.candidates),
             "candidates_rejected": len(cset.rejected)}
    return Result(policy, objective, choice.status, choice.objective_value, choice.best_bound, choice.gap,
                  choice.solve_time_s, placements, unplaced, racks, totals, choice.notes, stats)


def rack_usage(fleet: Fleet, choice: Choice, peak: list[dict[str, int]] | None = None) -> list[dict]:
    """Per (rack, chip type): capacity, busy before, placed now; per rack: IT power.
    With `peak` (horizon mode: per rack, the most chips placed at any one instant)
    `placed` is that peak and power is not summed over jobs that never overlap."""
    placed: dict[tuple[int, str], int] = {}
    added_kw: dict[int, float] = {}
    for alloc in choice.placed.values():
        c = alloc.candidate
        watts = rack_watts_per_chip(c, fleet)
        for r, n in alloc.racks.items():
            placed[r, c.chip_type] = placed.get((r, c.chip_type), 0) + n
            added_kw[r] = added_kw.get(r, 0.0) + watts * n / 1000.0
    if peak is not None:
        placed = {(r, t): n for r, per in enumerate(peak) for t, n in per.items()}
    rows = []
    for i, r in enumerate(fleet.racks):
        power = fleet.baseline_kw(r) + added_kw.get(i, 0.0)
        for t, count in r.chips.items():
            rows.append({"rack": r.id, "pod": r.pod, "chip_type": t, "capacity": count,
                         "busy_before": r.used.get(t, 0), "placed": placed.get((i, t), 0),
                         "used": r.used.get(t, 0) + placed.get((i, t), 0),
                         "power_kw": round(power, 3) if peak is None else None,
                         "power_cap_kw": r.power_cap_kw})
    return rows


class Explainer:
    """Why a job is unplaced, and what it would take."""

    def __init__(self, jobs: list[Job], fleet: Fleet, cset: CandidateSet, choice: Choice) -> None:
        self.jobs, self.fleet, self.cset, self.choice = jobs, fleet, cset, choice
        self.totals = fleet.totals()
        self.packer = Packer(fleet)
        for alloc in choice.placed.values():
            self.packer.commit(alloc.candidate, alloc.racks)
        self.candidates: dict[int, list] = {}
        for c in cset.candidates:
            self.candidates.setdefault(c.job, []).append(c)
        self.rejected: dict[int, list] = {}
        for r in cset.rejected:
            self.rejected.setdefault(r.job, []).append(r)
        # Placed jobs, highest priority first, for "held by".
        self.by_priority = sorted(choice.placed.items(), key=lambda ka: (-jobs[ka[0]].priority, ka[0]))

    def __call__(self, j: int) -> Unplaced:
        job = self.jobs[j]
        allowed = self.cset.allowed_types[j]
        if not allowed:
            present = ", ".join(self.fleet.types_present())
            rule = f"chip_types {list(job.chip_types)}" if job.chip_types else f"stack {job.stack!r}"
            return Unplaced(job, f"excluded: {rule} matches none of the fleet's chip types ({present})", "excluded")
        mine = self.candidates.get(j, [])
        if mine:
            return self._capacity(j, job, mine)
        rejected = self.rejected.get(j, [])
        if not rejected:
            free = {t: self.totals[t]["free"] for t in allowed}
            want = f"{job.chips_min}" if job.chips_min == job.chips_max else f"{job.chips_min}+"
            return Unplaced(job, f"no room: asks for {want} chips of {', '.join(allowed)}; the largest pod has "
                            + ", ".join(f"{n} {t}" for t, n in free.items()) + " free in all", "no_room")
        furthest = max(col.progress(r.reason) for r in rejected)
        worst = [r for r in rejected if col.progress(r.reason) == furthest]
        reason = worst[0].reason
        if reason == col.MEMORY:
            return self._memory(job, rejected)
        if reason in (col.SLO_TTFT, col.SLO_TPOT):
            return self._slo(job, worst)
        if reason == col.DEADLINE:
            best = min(worst, key=lambda r: r.values["duration_h"])
            return Unplaced(job, f"deadline unreachable: earliest finish {job.arrival_h + best.values['duration_h']:.1f} h "
                            f"on {best.chips} {best.chip_type} (deadline {job.deadline_h:g} h)", "deadline")
        if reason == col.RATE:
            best = max(worst, key=lambda r: r.values["tokens_per_s"] / r.chips)
            per_replica = best.values["tokens_per_s"] / max(best.values["replicas"], 1.0)
            need = math.ceil(job.rate_rps * job.output_tokens / per_replica) if per_replica > 0 else 0
            size = best.chips // max(int(best.values["replicas"]), 1)
            return Unplaced(job, f"rate unreachable: {job.rate_rps:g} req/s needs {need} replicas of {size} "
                            f"{best.chip_type} ({need * size} chips); at most {best.chips} fit in one pod", "rate")
        if reason == col.BATCH:
            return Unplaced(job, f"global batch of {job.batch_seqs:g} sequences cannot be split over the chips "
                            "the fleet has for it", "batch")
        return Unplaced(job, "no parallel layout fits the job's parallelism hints on the fleet's chips", "batch")

    def _memory(self, job: Job, rejected) -> Unplaced:
        best = min(rejected, key=lambda r: r.values["mem_per_chip"] / self.fleet.chip_types[r.chip_type].hbm_gb)
        chip = self.fleet.chip_types[best.chip_type]
        need_total = best.values["mem_per_chip"] * best.chips / 1e12
        have = self.totals[best.chip_type]["free"] * chip.hbm_gb / 1e3
        limit = (f" at the job's limit of {job.chips_max} chips" if job.chips_max is not None
                 and best.chips == job.chips_max else "")
        return Unplaced(job, f"does not fit in memory on any allowed chip type{limit}: needs "
                        f"{best.values['mem_per_chip'] / 1e9:,.0f} GB per chip on {best.chips} {best.chip_type} "
                        f"(has {chip.hbm_gb:g} GB), about {need_total:,.1f} TB in all; the fleet's free "
                        f"{best.chip_type} hold {have:,.1f} TB", "memory")

    def _slo(self, job: Job, worst) -> Unplaced:
        ttft = min(worst, key=lambda r: r.values["ttft_s"])
        tpot = min(worst, key=lambda r: r.values["tpot_s"])
        parts = []
        if job.slo_ttft_ms is not None:
            parts.append(f"best TTFT {ttft.values['ttft_s'] * 1e3:,.0f} ms on {ttft.chips} {ttft.chip_type} "
                         f"(SLO {job.slo_ttft_ms:g} ms)")
        if job.slo_tpot_ms is not None:
            parts.append(f"best TPOT {tpot.values['tpot_s'] * 1e3:,.1f} ms on {tpot.chips} {tpot.chip_type} "
                         f"(SLO {job.slo_tpot_ms:g} ms)")
        return Unplaced(job, "SLO unreachable on every allowed chip type: " + "; ".join(parts), "slo")

    def _capacity(self, j: int, job: Job, mine) -> Unplaced:
        """Feasible somewhere, but not now: how many chips short, and who holds them."""
        best, short = None, None
        for c in mine:
            if not c.multi:
                have = max(self.packer.free[r].get(c.chip_type, 0) for r in c.racks)
            else:
                have = max(sum(sorted((self.packer.free[r].get(c.chip_type, 0) for r in racks), reverse=True)
                               [:c.max_racks]) for racks in c.by_pod)
            gap = c.chips - have
            if short is None or gap < short:
                best, short = c, gap
        where = "one rack" if not best.multi else f"{best.max_racks} racks of one pod"
        racks = set(best.racks)
        holders = [f"{self.jobs[k].id} (priority {self.jobs[k].priority})" for k, a in self.by_priority
                   if a.candidate.chip_type == best.chip_type and not racks.isdisjoint(a.racks)]
        if short <= 0:
            return Unplaced(job, f"power cap: {best.chips} {best.chip_type} fit in {where} by chip count but would "
                            f"exceed the rack power cap after the placed jobs", "capacity")
        taken = (f"; held by {', '.join(holders[:5])}{f' and {len(holders) - 5} more' if len(holders) > 5 else ''}"
                 if holders else "")
        return Unplaced(job, f"capacity taken: needs {best.chips} {best.chip_type} in {where}, {short} short"
                        f"{taken}", "capacity")


class HorizonExplainer(Explainer):
    """Horizon mode: a job that could run somewhere but was not scheduled is
    explained by when it could start and finish around the scheduled jobs."""

    def __init__(self, jobs: list[Job], fleet: Fleet, cset: CandidateSet, choice: Choice, horizon_h: float) -> None:
        super().__init__(jobs, fleet, cset, choice)
        self.horizon_h = horizon_h
        self.line = schedule.timeline_of(fleet, choice)

    def __call__(self, j: int) -> Unplaced:
        job = self.jobs[j]
        mine = self.candidates.get(j, [])
        if not mine:
            return super().__call__(j)
        if job.arrival_h > self.horizon_h:
            return Unplaced(job, f"arrives at {job.arrival_h:g} h, after the {self.horizon_h:g} h horizon", "horizon")
        best = None
        for c in mine:
            found = self.line.earliest(c, job.arrival_h, math.inf)
            if found is not None and (best is None or found[0] + c.duration_h < best[1] + best[0].duration_h):
                best = (c, found[0])
        if best is None:
            return self._capacity(j, job, mine)
        c, start = best
        end = start + c.duration_h
        on = f"{c.chips} {c.chip_type}"
        if start > self.horizon_h:
            return Unplaced(job, f"cannot start within the {self.horizon_h:g} h horizon: the scheduled jobs leave "
                            f"room for it at {start:.1f} h at the earliest (on {on})", "horizon")
        if job.deadline_h is not None and end > job.deadline_h:
            return Unplaced(job, f"deadline unreachable around the scheduled jobs: earliest finish {end:.1f} h on "
                            f"{on} (deadline {job.deadline_h:g} h)", "deadline")
        return Unplaced(job, f"not scheduled: would fit from {start:.1f} h on {on}; the solver kept it out within "
                        "its time limit", "capacity")
