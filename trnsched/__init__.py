"""trnsched: workload scheduler for mixed Trainium / Nvidia accelerator fleets.

The pipeline, one folder or module per stage (docs/ARCHITECTURE.md):
inputs/ -> candidates.py (scored by perf/) -> objective.py -> policies/
(CP-SAT's in policies/cpsat/; all on racks.py's ledger) -> result.py and
explain.py; solve.py runs it, replay/ replays a trace through it, cli/ is the
command line.
"""
from trnsched.inputs import (ChipType, Fleet, InputError, Job, ModelSpec, Rack, builtin_models, chip_catalog,
                             default_fleet, load_fleet, load_jobs, parse_fleet, parse_jobs)
from trnsched.perf import score_arrays
from trnsched.replay import SimResult, Trace, load_trace, simulate
from trnsched.result import Placement, Result, Unplaced
from trnsched.solve import solve
from trnsched.whatif import WhatIf, what_if

__all__ = ["ChipType", "Fleet", "InputError", "Job", "ModelSpec", "Placement", "Rack", "Result", "SimResult",
           "Trace", "Unplaced", "WhatIf", "builtin_models", "chip_catalog", "default_fleet", "load_fleet",
           "load_jobs", "load_trace", "parse_fleet", "parse_jobs", "score_arrays", "simulate", "solve", "what_if"]
__version__ = "0.1.0"
