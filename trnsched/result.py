"""The answer of `solve`: placements with rack allocations and metrics, unplaced
jobs with what they would take, totals, per-rack use and power, and the
solver's status, bound and gap; `to_dict` is the placement JSON of DESIGN.md."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from trnsched.candidates import CandidateSet
from trnsched.explain import Unplaced, explainer
from trnsched.inputs.fleet import Fleet
from trnsched.inputs.io import json_number
from trnsched.inputs.jobs import Job
from trnsched.problem import STATUSES, Choice, Problem, SolverError
from trnsched.racks import RackLedger, Timeline, unit_racks
from trnsched.splits import ROLES


@dataclass
class Pool:
    """One pool of a disaggregated placement: a placement of its own (DESIGN.md)."""
    role: str
    chip_type: str
    chips: int
    allocations: list[tuple[str, int]]
    metrics: dict[str, float]
    layout: dict[str, float]

    def to_dict(self) -> dict:
        return {"role": self.role, "chip_type": self.chip_type, "chips": self.chips,
                "allocations": [{"rack": r, "chips": n} for r, n in self.allocations],
                "layout": {k: json_number(v) for k, v in self.layout.items()},
                "metrics": {k: json_number(v) for k, v in self.metrics.items()}}


@dataclass
class Placement:
    job: Job
    chip_type: str          # a disaggregated placement: "<prefill type>+<decode type>"
    chips: int
    allocations: list[tuple[str, int]]
    start_h: float
    end_h: float
    metrics: dict[str, float]
    layout: dict[str, float]
    pools: list[Pool] = field(default_factory=list)
    link: str | None = None  # disaggregated: "scale_up" (one rack's fabric) or "scale_out"

    def to_dict(self) -> dict:
        out = {"job": self.job.id, "kind": self.job.kind, "priority": self.job.priority,
               "chip_type": self.chip_type, "chips": self.chips,
               "allocations": [{"rack": r, "chips": n} for r, n in self.allocations],
               "start_h": json_number(self.start_h), "end_h": json_number(self.end_h),
               "layout": {k: json_number(v) for k, v in self.layout.items()},
               "metrics": {k: json_number(v) for k, v in self.metrics.items()}}
        if self.pools:
            out["link"] = self.link
            out["pools"] = [p.to_dict() for p in self.pools]
        return out


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
    priority_bound: int | None = None      # no placement places more priority
    interrupted: bool = False              # the best answer when a signal arrived (--on-interrupt best)

    def to_dict(self) -> dict:
        marked = {"interrupted": True} if self.interrupted else {}
        return {**marked, "status": self.status, "policy": self.policy, "objective": self.objective,
                "objective_value": json_number(self.objective_value),
                "best_bound": json_number(self.best_bound, "down"), "priority_bound": self.priority_bound,
                "gap": json_number(self.gap, "up"), "solve_time_s": round(self.solve_time_s, 3),
                "placements": [p.to_dict() for p in self.placements],
                "unplaced": [u.to_dict() for u in self.unplaced],
                "totals": {k: json_number(v) for k, v in self.totals.items()},
                "racks": self.racks, "notes": self.notes, "stats": self.stats}


def workloads(placement: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A placement of the placement JSON as the workloads it runs: itself, or one
    per pool, `<job>-prefill` and `<job>-decode` (each pool is a serving
    deployment of its own; `service` names the job they serve).  Exports and
    the report read disaggregated placements through it."""
    if not placement.get("pools"):
        return [placement]
    whole = {k: v for k, v in placement.items() if k not in ("pools", "link")}
    return [{**whole, **pool, "job": f"{placement['job']}-{pool['role']}", "service": placement["job"]}
            for pool in placement["pools"]]



def placement_metrics(job: Job, v: dict) -> dict[str, float]:
    common = {"power_kw": v["power_kw"], "energy_kwh": v["energy_kwh"], "cost_usd": v["cost_usd"],
              "duration_h": v["duration_h"], "mem_per_chip_gb": v["mem_per_chip"] / 1e9}
    if job.is_train:
        return {"step_time_s": v["step_time_s"], "tokens_per_s": v["tokens_per_s"], "mfu": v["mfu"], **common}
    return {"ttft_ms": v["ttft_s"] * 1e3, "tpot_ms": v["tpot_s"] * 1e3, "batch": v["batch"],
            "output_tokens_per_s": v["tokens_per_s"], "replicas": v["replicas"],
            "replicas_needed": v["replicas_needed"], **common}


def placement_layout(job: Job, v: dict) -> dict[str, float]:
    keys = ("tp", "pp", "dp", "ep", "recompute") if job.is_train else ("tp", "pp", "replicas", "batch")
    return {k: v[k] for k in keys}


def split_metrics(v: dict) -> dict[str, float]:
    """A disaggregated job's combined figures: the service's TTFT (queueing,
    prefill, KV transfer) and TPOT (decode pool alone), and both pools' totals."""
    return {"ttft_ms": v["ttft_s"] * 1e3, "tpot_ms": v["tpot_s"] * 1e3, "output_tokens_per_s": v["tokens_per_s"],
            "replicas": v["replicas"], "kv_transfer_ms": v["kv_transfer_s"] * 1e3,
            "kv_mb_per_request": v["kv_bytes"] / 1e6, "power_kw": v["power_kw"], "energy_kwh": v["energy_kwh"],
            "cost_usd": v["cost_usd"], "duration_h": v["duration_h"], "mem_per_chip_gb": v["mem_per_chip"] / 1e9}


def pool_of(role: str, unit, racks: dict[int, int], fleet: Fleet) -> Pool:
    v = unit.values
    metrics = {"replicas": v["replicas"], "utilisation": v["utilisation"], "power_kw": v["power_kw"],
               "energy_kwh": v["energy_kwh"], "cost_usd": v["cost_usd"], "mem_per_chip_gb": v["mem_per_chip"] / 1e9}
    layout = {"tp": v["tp"], "pp": v["pp"], "replicas": v["replicas"]}
    if role == "prefill":
        metrics.update(ttft_ms=v["ttft_s"] * 1e3, kv_link_share=v["kv_link_share"])
    else:
        metrics.update(tpot_ms=v["tpot_s"] * 1e3, batch=v["batch"], output_tokens_per_s=v["tokens_per_s"])
        layout["batch"] = v["batch"]
    return Pool(role, unit.chip_type, unit.chips, [(fleet.racks[r].id, n) for r, n in sorted(racks.items())],
                metrics, layout)


def build(problem: Problem, cset: CandidateSet, choice: Choice, policy: str) -> Result:
    """The Result of a choice: placements, every other job explained, totals, racks."""
    if choice.status not in STATUSES:
        raise SolverError(f"{policy} answered with status {choice.status!r}, not one of {', '.join(STATUSES)}")
    jobs, fleet, horizon = problem.jobs, problem.ledger.fleet, problem.horizon
    placements = []
    for j, alloc in sorted(choice.placed.items()):
        c, job = alloc.candidate, jobs[j]
        start = job.arrival_h if alloc.start_h is None else alloc.start_h
        allocations = [(fleet.racks[r].id, n) for r, n in sorted(alloc.racks.items())]
        if c.pools:
            c = c.as_placed(alloc.racks)
            pools = [pool_of(role, u, part, fleet) for role, (u, part) in zip(ROLES, unit_racks(c, alloc.racks))]
            layout = {f"{p.role}_{k}": v for p in pools for k, v in p.layout.items()}
            placements.append(Placement(job, c.chip_type, c.chips, allocations, start, start + c.duration_h,
                                        split_metrics(c.values), layout, pools,
                                        "scale_up" if c.fused else "scale_out"))
            continue
        placements.append(Placement(job, c.chip_type, c.chips, allocations, start, start + c.duration_h,
                                    placement_metrics(job, c.values), placement_layout(job, c.values)))
    ledger = RackLedger(fleet)
    for alloc in choice.placed.values():
        ledger.commit(alloc.candidate, alloc.racks)
    line = None if horizon is None else Timeline.of(fleet, ((a.candidate, a.racks, a.start_h)
                                                            for a in choice.placed.values()))
    explain = explainer(problem, cset, choice, ledger, line)
    unplaced = [explain(j) for j in range(len(jobs)) if j not in choice.placed]
    racks = rack_usage(fleet, ledger, None if line is None else line.peak())
    totals = {"jobs_placed": len(placements), "jobs_unplaced": len(unplaced),
              "priority_placed": sum(p.job.priority for p in placements),
              "priority_total": sum(j.priority for j in jobs),
              "chips_used": sum(p.chips for p in placements),
              "energy_kwh": sum(p.metrics["energy_kwh"] for p in placements),
              "cost_usd": sum(p.metrics["cost_usd"] for p in placements),
              "power_kw": sum(p.metrics["power_kw"] for p in placements)}
    if horizon is not None:
        waits = [p.start_h - p.job.arrival_h for p in placements]
        totals.update({"horizon_h": horizon.hours, "makespan_h": max((p.end_h for p in placements), default=0.0),
                       "mean_wait_h": sum(waits) / len(waits) if waits else 0.0,
                       "weighted_completion_h": sum(p.job.priority * (p.end_h - p.job.arrival_h)
                                                    for p in placements),
                       "completion_weight": horizon.lam})
    stats = {"candidates_scored": cset.scored, "candidates_kept": len(cset.candidates),
             "candidates_rejected": len(cset.rejected), "disaggregated": sum(1 for p in placements if p.pools)}
    if choice.subproblems is not None:
        stats["subproblems"] = choice.subproblems
    return Result(policy, problem.costs.objective, choice.status, choice.objective_value, choice.best_bound,
                  choice.gap, choice.solve_time_s, placements, unplaced, racks, totals, choice.notes, stats,
                  choice.priority_bound)


def rack_usage(fleet: Fleet, ledger: RackLedger, peak: list[dict[str, int]] | None = None) -> list[dict]:
    """Per (rack, chip type): capacity, busy before, placed now; per rack: IT power.
    With `peak` (horizon mode: per rack, the most chips placed at any one instant)
    `placed` is that peak and power is not summed over jobs that never overlap."""
    rows = []
    for i, r in enumerate(fleet.racks):
        power = fleet.baseline_kw(r) + ledger.drawn[i] / 1000.0
        for t, count in r.chips.items():
            placed = ledger.placed(i, t) if peak is None else peak[i].get(t, 0)
            rows.append({"rack": r.id, "pod": r.pod, "chip_type": t, "capacity": count,
                         "busy_before": r.used.get(t, 0), "placed": placed,
                         "used": r.used.get(t, 0) + placed,
                         "power_kw": round(power, 3) if peak is None else None,
                         "power_cap_kw": r.power_cap_kw})
    return rows
