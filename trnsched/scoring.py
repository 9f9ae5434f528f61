"""Scoring candidates: one entry point over the compiled core and its Python twin."""
from __future__ import annotations

import numpy as np

from trnsched import _columns as col
from trnsched import _reference

try:
    from trnsched import _core
except ImportError:  # pragma: no cover - only when the package was not built
    _core = None

BACKENDS = ("core", "python", "numpy")
_DTYPES = {"feasible": np.uint8, "reason": np.int8}


def _candidate_arrays(job_index, chip_index, chips, domains):
    return (np.ascontiguousarray(job_index, dtype=np.intp), np.ascontiguousarray(chip_index, dtype=np.intp),
            np.ascontiguousarray(chips, dtype=np.int64), np.ascontiguousarray(domains, dtype=np.int64))


def score_arrays(job_table, chip_table, job_index, chip_index, chips, domains, *,
                 backend: str = "core", threads: int = 1, out: dict | None = None) -> dict[str, np.ndarray]:
    """Score candidates given as flat arrays; returns {name: array} for every name in
    `_columns.OUTPUTS`.  `backend` picks the compiled core (default), the pure-Python
    reference, or the numpy-vectorised version of the same formulas.  `out` (core
    only) is an earlier result whose buffers are reused."""
    job_table = np.ascontiguousarray(job_table, dtype=np.float64)
    chip_table = np.ascontiguousarray(chip_table, dtype=np.float64)
    cand = _candidate_arrays(job_index, chip_index, chips, domains)
    if backend == "core":
        if _core is None:
            raise RuntimeError("trnsched._core is not built; run `pip install -e .`")
        return _core.score(job_table, chip_table, *cand, threads=threads, out=out)
    if backend == "python":
        raw = _reference.score(job_table, chip_table, *cand)
        return {k: np.asarray(raw[k], dtype=_DTYPES.get(k, np.float64)) for k in col.OUTPUTS}
    if backend == "numpy":
        from trnsched import _vectorized
        return _vectorized.score(job_table, chip_table, *cand)
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
