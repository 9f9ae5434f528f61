"""Why a job is unplaced, and what it would take: one line per job.

- `excluded`: its allow-list or stack matches no chip type in the fleet;
- `no_room`: no pod has the chips its count asks for;
- `memory`, `slo`, `deadline`, `rate`, `batch`: why its best candidate could not
  run, from the scoring core's reasons, with the figures that fall short;
- `capacity`: it could run, but the placed jobs hold the room: how many chips
  short and who holds them, or the rack power cap;
- `horizon` (and `deadline`, `capacity`) over a horizon: when the scheduled
  jobs leave room for it.

A service's line also says whether disaggregation (split prefill and decode
pools) was tried, and what its cheapest split needs or why there is none.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Callable

from trnsched.candidates import Candidate, CandidateSet, by_job
from trnsched.inputs.jobs import Job
from trnsched.perf import columns as col
from trnsched.problem import Choice, Problem
from trnsched.racks import RackLedger, Timeline


@dataclass
class Unplaced:
    job: Job
    reason: str
    kind: str          # excluded | memory | slo | deadline | rate | batch | capacity | no_room | horizon

    def to_dict(self) -> dict:
        return {"job": self.job.id, "reason": self.reason, "kind": self.kind}


def explainer(problem: Problem, cset: CandidateSet, choice: Choice, ledger: RackLedger,
              line: Timeline | None) -> Callable[[int], Unplaced]:
    """A function from an unplaced job's index to its Unplaced; `ledger` holds the
    placed jobs, and `line` them over time when they were scheduled."""
    if line is None:
        return Explainer(problem, cset, choice, ledger)
    return HorizonExplainer(problem, cset, choice, ledger, line)


class Explainer:
    def __init__(self, problem: Problem, cset: CandidateSet, choice: Choice, ledger: RackLedger) -> None:
        self.jobs, self.fleet, self.cset, self.ledger = problem.jobs, ledger.fleet, cset, ledger
        self.totals = self.fleet.totals()
        self.candidates = by_job(cset.candidates)
        self.rejected = by_job(cset.rejected)
        # Per candidate shape (the ledger no longer changes): its shortfall, and the
        # holders it names (100,000 jobs: ranking thousands of holders per job took 75 s).
        self.shortfalls: dict = {}
        self.named_holders: dict = {}
        self.pod_free: dict[str, int] = {}

    def __call__(self, j: int) -> Unplaced:
        out = self.why(j)
        if not out.job.is_train and out.kind != "excluded":
            out.reason += "; " + self.split_line(j)
        return out

    def split_line(self, j: int) -> str:
        """Whether disaggregation was tried for a service, and what it needs."""
        note = self.cset.split_notes.get(j)
        if note is not None:
            return note
        splits = [c for c in self.candidates.get(j, []) if c.pools]
        if not splits:
            return "disaggregation tried: no split fits the fleet"
        best = min(splits, key=lambda c: (c.cost_usd, c.energy_kwh))
        return f"disaggregation tried: the cheapest split needs {describe(best)}"

    def why(self, j: int) -> Unplaced:
        job = self.jobs[j]
        allowed = self.cset.allowed_types[j]
        if not allowed:
            present = ", ".join(self.fleet.types_present())
            rule = f"chip_types {list(job.chip_types)}" if job.chip_types else f"stack {job.stack!r}"
            return Unplaced(job, f"excluded: {rule} matches none of the fleet's chip types ({present})",
                                 "excluded")
        mine = self.candidates.get(j, [])
        if mine:
            return self.capacity(job, mine)
        if job.disaggregation == "require":
            return Unplaced(job, "disaggregation is required and no split of it can run on the fleet", "no_room")
        rejected = self.rejected.get(j, [])
        if not rejected:
            if job.chips_min is None:
                want = "1 or more"
            elif job.chips_min == job.chips_max:
                want = f"{job.chips_min}"
            elif job.chips_max is None:
                want = f"{job.chips_min}+"
            else:
                want = f"{job.chips_min}-{job.chips_max}"
            for t in allowed:
                if t not in self.pod_free:
                    self.pod_free[t] = self.fleet.largest_pod_free(t)
            pods = ", ".join(f"{self.pod_free[t]} {t}" for t in allowed)
            fleet = ", ".join(f"{self.totals[t]['free']} {t}" for t in allowed)
            return Unplaced(job, f"no room: asks for {want} chips of {', '.join(allowed)}; the largest pod "
                                 f"has {pods} free ({fleet} in the fleet)", "no_room")
        furthest = max(col.progress(r.reason) for r in rejected)
        worst = [r for r in rejected if col.progress(r.reason) == furthest]
        reason = worst[0].reason
        if reason == col.MEMORY:
            return self.memory(job, rejected)
        if reason in (col.SLO_TTFT, col.SLO_TPOT):
            return self.slo(job, worst)
        if reason == col.DEADLINE:
            best = min(worst, key=lambda r: r.values["duration_h"])
            return Unplaced(job, f"deadline unreachable: earliest finish "
                                 f"{job.arrival_h + best.values['duration_h']:.1f} h on {best.chips} "
                                 f"{best.chip_type} (deadline {job.deadline_h:g} h)", "deadline")
        if reason == col.RATE:
            best = max(worst, key=lambda r: r.values["tokens_per_s"] / r.chips)
            per_replica = best.values["tokens_per_s"] / max(best.values["replicas"], 1.0)
            need = math.ceil(job.rate_rps * job.output_tokens / per_replica) if per_replica > 0 else 0
            size = best.chips // max(int(best.values["replicas"]), 1)
            return Unplaced(job, f"rate unreachable: {job.rate_rps:g} req/s needs {need} replicas of {size} "
                                 f"{best.chip_type} ({need * size} chips); at most {best.chips} fit in one pod", "rate")
        if reason == col.BATCH:
            return Unplaced(job, f"global batch of {job.batch_seqs:g} sequences cannot be split over the "
                                 "chips the fleet has for it", "batch")
        return Unplaced(job, "no parallel layout fits the job's parallelism hints on the fleet's chips", "batch")

    def memory(self, job: Job, rejected) -> Unplaced:
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

    def slo(self, job: Job, worst) -> Unplaced:
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

    def capacity(self, job: Job, mine) -> Unplaced:
        """Feasible somewhere, but not now: how many chips short, and who holds them."""
        best, shortfall = None, None
        for c in mine:
            # Type, count, rack count and pods fix the racks a candidate may use
            # (candidates.generate), so its shortfall in chips is its shape's.
            shape = shape_of(c)
            if shape not in self.shortfalls:
                self.shortfalls[shape] = self.ledger.room.shortfall(c, self.ledger)
            outcome = self.shortfalls[shape]
            # Only where the chips are there can it fit: then its watts decide.
            found = self.ledger.fit(c) if outcome.short <= 0 else None
            if found is not None:
                where = "one rack" if not c.multi else f"{len(found)} racks of one pod"
                what = describe(c) if c.pools else f"{c.chips} {c.chip_type} fit in {where}"
                return Unplaced(job, f"not placed: {what} beside the placed jobs; the solver left it out within "
                                     "its time limit", "capacity")
            if shortfall is None or outcome.short < shortfall.short:
                best, shortfall = c, outcome
        where = "one rack" if not best.multi else f"{best.max_racks} racks of one pod"
        what = describe(best) if best.pools else f"{best.chips} {best.chip_type} in {where}"
        if shortfall.reason == "power":
            return Unplaced(job, f"power cap: {what} fit by chip count but would exceed the rack power cap after "
                                 "the placed jobs", "capacity")
        shape = shape_of(best)
        if shape not in self.named_holders:
            holders = shortfall.holders
            named = [f"{self.jobs[k].id} (priority {self.jobs[k].priority})"
                     for k in heapq.nsmallest(5, holders, key=lambda k: (-self.jobs[k].priority, k))]
            self.named_holders[shape] = (
                f"; held by {', '.join(named)}{f' and {len(holders) - 5} more' if len(holders) > 5 else ''}"
                if named else "")
        taken = self.named_holders[shape]
        return Unplaced(job, f"capacity taken: needs {what}, {shortfall.short} short{taken}", "capacity")


def shape_of(c: Candidate) -> tuple:
    """What fixes the racks a candidate may use, hence its shortfall."""
    return (c.chip_type, c.chips, c.max_racks, c.pods, c.fused, tuple(u.chips for u in c.pools))


def describe(c: Candidate) -> str:
    """A split's pools in words."""
    p, d = c.pools
    where = "in one rack (scale-up fabric)" if c.fused else "on a rack each (KV cache over scale-out)"
    return f"{p.chips} {p.chip_type} (prefill) + {d.chips} {d.chip_type} (decode) {where}"


class HorizonExplainer(Explainer):
    """Over a horizon, a job that could run somewhere but was not scheduled is
    explained by when it could start and finish around the scheduled jobs."""

    def __init__(self, problem: Problem, cset: CandidateSet, choice: Choice, ledger: RackLedger,
                 line: Timeline) -> None:
        super().__init__(problem, cset, choice, ledger)
        self.horizon_h = problem.horizon.hours
        self.line = line

    def why(self, j: int) -> Unplaced:
        job = self.jobs[j]
        mine = self.candidates.get(j, [])
        if not mine:
            return super().why(j)
        if job.arrival_h > self.horizon_h:
            return Unplaced(job, f"arrives at {job.arrival_h:g} h, after the {self.horizon_h:g} h horizon",
                                 "horizon")
        best = None
        for c in mine:
            found = self.line.earliest(c, job.arrival_h, math.inf)
            if found is not None and (best is None or found[0] + c.duration_h < best[1] + best[0].duration_h):
                best = (c, found[0])
        if best is None:
            return self.capacity(job, mine)
        c, start = best
        end = start + c.duration_h
        on = describe(c) if c.pools else f"{c.chips} {c.chip_type}"
        if start > self.horizon_h:
            return Unplaced(job, f"cannot start within the {self.horizon_h:g} h horizon: the scheduled jobs "
                                 f"leave room for it at {start:.1f} h at the earliest (on {on})", "horizon")
        if job.deadline_h is not None and end > job.deadline_h:
            return Unplaced(job, f"deadline unreachable around the scheduled jobs: earliest finish {end:.1f} h "
                                 f"on {on} (deadline {job.deadline_h:g} h)", "deadline")
        return Unplaced(job, f"not scheduled: would fit from {start:.1f} h on {on}; the solver kept it out "
                             "within its time limit", "capacity")
