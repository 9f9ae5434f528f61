"""What a replay reports: each job's run, and the figures over them (completion
and queueing, makespan, utilisation per chip type over time, energy, cost)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trnsched.candidates import Candidate
from trnsched.inputs.fleet import Fleet
from trnsched.inputs.jobs import Job
from trnsched.racks import EPS


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
            "runs_per_chip_type": {t: sum(1 for r in self.runs if any(u.chip_type == t for u in r.candidate.units))
                                   for t in totals},
            "decisions": self.decisions, "solver_calls": self.solver_calls,
            "decide_s": self.decide_s, "wall_s": self.wall_s,
            "utilisation_series": {"bucket_h": self.bucket_h, "start_h": first, "by_chip_type": self.series},
            "notes": self.notes,
        }


def _stats(x: np.ndarray) -> dict[str, float]:
    return {"mean": float(x.mean()), "p50": float(np.percentile(x, 50)), "p99": float(np.percentile(x, 99)),
            "max": float(x.max())}


def utilisation(fleet: Fleet, runs: list[Run], steps: list[tuple[float, str, int]], buckets: int
                ) -> tuple[dict[str, float], dict[str, list[float]], float, float]:
    """Busy chip-hours per type, mean utilisation per type in `buckets` equal
    slices of the replay, and the idle chips' energy over it (idle draw and host
    share); `steps` are
    (time, chip type, +/- chips) as jobs start and end."""
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
        idle_kwh += idle_chip_h * (chip.idle_w + chip.host_w) / 1000.0 * fleet.pue
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
