"""The performance model: the compiled scoring core (_core.pyx, its interface in
_core.pxd), the readable reference it is held to (reference.py), the tables it
reads, the what the catalogs and jobs become (tables.py) and the one entry point
(scoring.py); validation.py turns published measurements into jobs."""
from trnsched.perf.scoring import score_arrays

__all__ = ["score_arrays"]
