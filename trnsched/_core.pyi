"""Type stub for the compiled scoring core (trnsched/_core.pyx)."""
from typing import Any

import numpy as np
import numpy.typing as npt

def layout_constants() -> dict[str, float]: ...
def score(
    job_table: npt.NDArray[np.float64],
    chip_table: npt.NDArray[np.float64],
    job_index: npt.NDArray[np.intp],
    chip_index: npt.NDArray[np.intp],
    chips: npt.NDArray[np.int64],
    domains: npt.NDArray[np.int64],
    threads: int = 1,
    out: dict[str, Any] | None = None,
) -> dict[str, npt.NDArray[Any]]: ...
