"""The what-if view behind `trnsched score`: each job on each allowed chip type and count.

Independent of any fleet's free capacity: chips are packed into the chip
type's standard scale-up domains (1,024 H100s = 128 eight-GPU nodes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from trnsched.candidates import chip_counts
from trnsched.inputs.catalog import ChipType
from trnsched.inputs.errors import InputError
from trnsched.inputs.io import json_number
from trnsched.inputs.jobs import Job, check_jobs
from trnsched.inputs.schema import WhatIfArguments
from trnsched.inputs.validate import check_arguments
from trnsched.perf import columns as col
from trnsched.perf.scoring import score_arrays
from trnsched.perf.tables import chip_table, job_table


@dataclass
class WhatIf:
    job: Job
    chip: ChipType
    chips: int
    domains: int
    values: Mapping[str, float]

    @property
    def feasible(self) -> bool:
        return bool(self.values["feasible"])

    @property
    def reason(self) -> str:
        return col.REASON_NAMES[int(self.values["reason"])]

    def metrics(self) -> dict[str, float]:
        v = self.values
        common = {"power_kw": v["power_kw"], "energy_kwh": v["energy_kwh"], "cost_usd": v["cost_usd"],
                  "mem_per_chip_gb": v["mem_per_chip"] / 1e9}
        if self.job.is_train:
            return {"step_time_s": v["step_time_s"], "tokens_per_s": v["tokens_per_s"], "mfu": v["mfu"],
                    "duration_h": v["duration_h"], **common}
        return {"ttft_ms": v["ttft_s"] * 1e3, "tpot_ms": v["tpot_s"] * 1e3, "batch": int(v["batch"]),
                "max_batch": int(v["max_batch"]), "output_tokens_per_s": v["tokens_per_s"],
                "replicas": int(v["replicas"]), "replicas_needed": int(v["replicas_needed"]), **common}

    def layout(self) -> dict[str, int]:
        v = self.values
        names = ("tp", "pp", "dp", "ep") if self.job.is_train else ("tp", "pp")
        out = {k: int(v[k]) if math.isfinite(v[k]) else 0 for k in names}
        if self.job.is_train:
            out["recompute"] = int(v["recompute"])
        return out

    def to_dict(self) -> dict:
        return {"job": self.job.id, "chip_type": self.chip.name, "chips": self.chips, "domains": self.domains,
                "feasible": self.feasible, "reason": self.reason, "layout": self.layout(),
                "metrics": {k: json_number(float(x) if not isinstance(x, int) else x) for k, x in self.metrics().items()}}


def what_if(jobs: Sequence[Job], chips: Mapping[str, ChipType], *, chip_type: str | None = None,
            count: int | None = None, pue: float | None = None, backend: str = "core") -> list[WhatIf]:
    """Score every job on every allowed chip type and count, in one call into the core."""
    check_arguments(WhatIfArguments, chip_type=chip_type, count=count, pue=pue, backend=backend)
    if chip_type is not None and chip_type not in chips:
        raise InputError(f"unknown chip type {chip_type!r}; known: {', '.join(sorted(chips))}", field="chip_type")
    if jobs and all(isinstance(j, Job) for j in jobs):
        check_jobs(jobs, chips)
    elif jobs:
        raise InputError("must be a list of Job objects (parse_jobs reads them from JSON)", field="jobs")
    names = list(chips)
    types = [chips[n] for n in names]
    rows: list[tuple[int, int, int, int]] = []
    for ji, job in enumerate(jobs):
        for ci, chip in enumerate(types):
            if chip_type is not None and chip.name != chip_type:
                continue
            if not job.allows(chip.name, chip.stack):
                continue
            for n in ([count] if count else chip_counts(job, chip.domain_size)):
                rows.append((ji, ci, n, math.ceil(n / chip.domain_size)))
    if not rows:
        return []
    arr = np.array(rows, dtype=np.int64)
    out = score_arrays(job_table(jobs), chip_table(types, pue=pue), arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3],
                       backend=backend)
    results = []
    for i, (ji, ci, n, d) in enumerate(rows):
        results.append(WhatIf(jobs[ji], types[ci], n, d, {k: out[k][i] for k in col.OUTPUTS}))
    return results
