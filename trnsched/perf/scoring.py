"""Scoring candidates: one entry point over the compiled core and its Python twin."""
from __future__ import annotations

import numpy as np

from trnsched.perf import reference
from trnsched.perf._core import LAYOUT_DTYPE, POOLS_DTYPE, score as score_compiled, score_pools as pools_compiled
from trnsched.perf.columns import OUTPUTS, POOL_FIELDS
from trnsched.perf.reference.pools import score_pools as pools_reference

BACKENDS = ("core", "python")


def score_arrays(job_table, chip_table, job_index, chip_index, chips, domains, *,
                 backend: str = "core", threads: int = 1, out: dict | None = None) -> dict[str, np.ndarray]:
    """Score candidates given as flat arrays; returns {name: array} for every name in
    `columns.OUTPUTS`.  `backend` picks the compiled core (default) or the
    pure-Python reference of the same formulas.  `out` (core only) is an earlier
    result whose buffer is reused."""
    job_table = np.ascontiguousarray(job_table, dtype=np.float64)
    chip_table = np.ascontiguousarray(chip_table, dtype=np.float64)
    cand = (np.ascontiguousarray(job_index, dtype=np.intp), np.ascontiguousarray(chip_index, dtype=np.intp),
            np.ascontiguousarray(chips, dtype=np.int64), np.ascontiguousarray(domains, dtype=np.int64))
    if backend == "core":
        records, feasible = score_compiled(job_table, chip_table, *cand, threads=threads,
                                           out=None if out is None else (out["records"], out["feasible"]))
        result = {name: records[name] for name in OUTPUTS if name != "feasible"}
        result["feasible"], result["records"] = feasible, records
        return result
    if backend == "python":
        raw = reference.score(job_table, chip_table, *cand)
        return {k: np.asarray(raw[k], dtype=np.uint8 if k == "feasible" else LAYOUT_DTYPE[k]) for k in OUTPUTS}
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def score_pool_arrays(job_table, chip_table, job_index, prefill_index, decode_index, link, *,
                      backend: str = "core") -> dict[str, np.ndarray]:
    """Size disaggregated candidates given as flat arrays (job, prefill chip type,
    decode chip type, `columns.FUSED` or `SCALE_OUT`); returns {name: array} for
    every name in `columns.POOL_FIELDS` and "reason"."""
    job_table = np.ascontiguousarray(job_table, dtype=np.float64)
    chip_table = np.ascontiguousarray(chip_table, dtype=np.float64)
    cand = (np.ascontiguousarray(job_index, dtype=np.intp), np.ascontiguousarray(prefill_index, dtype=np.intp),
            np.ascontiguousarray(decode_index, dtype=np.intp), np.ascontiguousarray(link, dtype=np.int64))
    if backend == "core":
        records = pools_compiled(job_table, chip_table, *cand)
        return {name: records[name] for name in POOL_FIELDS + ("reason",)}
    if backend == "python":
        raw = pools_reference(job_table, chip_table, *cand)
        return {k: np.asarray(v, dtype=POOLS_DTYPE[k]) for k, v in raw.items()}
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
