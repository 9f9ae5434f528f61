"""The layout of the flat tables the scoring core reads and writes, for Python.

The core takes a job table (one row per job), a chip table (one row per chip
type, with the calibrated efficiency constants already filled in) and, per
candidate, a job row index, a chip row index, a chip count and the number of
scale-up domains the chips span.  Column indices, reason codes, limits and the
output names (and the inference rankings) are declared once, in `_core.pxd`; this module gives them to
Python as plain ints under the same names (J_LAYERS, C_HBM, MEMORY,
MAX_BATCH, ...), with the output names in OUTPUTS.
"""
import trnsched.perf._core as core
from trnsched.perf._core import LAYOUT_DTYPE, POOLS_DTYPE, Link, Precision, Ranking, Reason

globals().update({name: value for name, value in vars(core).items()
                  if name.startswith(("J_", "C_")) or name in ("JOB_COLUMNS", "CHIP_COLUMNS")})
globals().update({m.name: int(m) for enum in (Reason, Ranking, Precision, Link) for m in enum})
N_TP_OPTIONS = core.N_TP_OPTIONS
MAX_BATCH = core.MAX_BATCH

TP_OPTIONS = tuple(2 ** k for k in range(N_TP_OPTIONS))
OUTPUTS = ("feasible",) + tuple(name for name in LAYOUT_DTYPE.names if name != "score")
POOL_FIELDS = tuple(name for name in POOLS_DTYPE.names if name != "reason")   # score_pools() outputs
REASON_NAMES = {int(m): m.name.lower() for m in Reason}


def progress(reason: int) -> int:
    """How far a layout got through the checks: OK beats every failure."""
    return 99 if reason == Reason.OK else reason
