"""Type stub for the compiled scoring core (trnsched/perf/_core.pyx; interface in _core.pxd)."""
from enum import IntEnum

import numpy as np
import numpy.typing as npt

LAYOUT_DTYPE: np.dtype          # one record per candidate: the fields of the Layout struct
POOLS_DTYPE: np.dtype           # one record per disaggregated candidate: the fields of the Pools struct
N_TP_OPTIONS: int
MAX_BATCH: int
JOB_COLUMNS: int
CHIP_COLUMNS: int

class Reason(IntEnum):
    OK: int
    NO_LAYOUT: int
    MEMORY: int
    BATCH: int
    SLO_TTFT: int
    SLO_TPOT: int
    RATE: int
    DEADLINE: int

def score(
    job_table: npt.NDArray[np.float64],
    chip_table: npt.NDArray[np.float64],
    job_index: npt.NDArray[np.intp],
    chip_index: npt.NDArray[np.intp],
    chips: npt.NDArray[np.int64],
    domains: npt.NDArray[np.int64],
    threads: int = 1,
    out: tuple[np.ndarray, npt.NDArray[np.uint8]] | None = None,
) -> tuple[np.ndarray, npt.NDArray[np.uint8]]: ...


class Link(IntEnum):
    FUSED: int
    SCALE_OUT: int

def score_pools(
    job_table: npt.NDArray[np.float64],
    chip_table: npt.NDArray[np.float64],
    job_index: npt.NDArray[np.intp],
    prefill_index: npt.NDArray[np.intp],
    decode_index: npt.NDArray[np.intp],
    link: npt.NDArray[np.int64],
) -> npt.NDArray[np.void]: ...
