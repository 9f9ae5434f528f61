"""trnsched: workload scheduler for mixed Trainium / Nvidia accelerator fleets."""
from trnsched.catalog import ChipType, ModelSpec, builtin_models, chip_catalog
from trnsched.errors import InputError
from trnsched.fleet import Fleet, Rack, default_fleet, load_fleet, parse_fleet
from trnsched.placement import Placement, Result, Unplaced, solve
from trnsched.jobs import Job, load_jobs, parse_jobs
from trnsched.scoring import score_arrays
from trnsched.simulate import SimResult, simulate
from trnsched.traces import Trace, load_trace
from trnsched.whatif import WhatIf, what_if

__all__ = ["ChipType", "Fleet", "InputError", "Job", "ModelSpec", "Placement", "Rack", "Result", "SimResult",
           "Trace", "Unplaced", "WhatIf", "builtin_models", "chip_catalog", "default_fleet", "load_fleet",
           "load_jobs", "load_trace", "parse_fleet", "parse_jobs", "score_arrays", "simulate", "solve", "what_if"]
__version__ = "0.1.0"
