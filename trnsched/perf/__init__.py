"""The performance model: the compiled scoring core (_core.pyx, the formulas in
_common.pxi, _training.pxi and _serving.pxi, the interface in _core.pxd), the
readable reference it is held to (reference/), the flat tables it reads
(tables.py, columns.py, constants.py) and the one entry point (scoring.py);
validation.py turns published measurements into jobs."""
from trnsched.perf.scoring import score_arrays

__all__ = ["score_arrays"]
