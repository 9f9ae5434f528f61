"""trnsched: workload scheduler for mixed Trainium / Nvidia accelerator fleets."""
from trnsched.catalog import ChipType, ModelSpec, builtin_models, chip_catalog
from trnsched.errors import InputError
from trnsched.jobs import Job, load_jobs, parse_jobs
from trnsched.scoring import score_arrays
from trnsched.whatif import WhatIf, what_if

__all__ = ["ChipType", "InputError", "Job", "ModelSpec", "WhatIf", "builtin_models", "chip_catalog",
           "load_jobs", "parse_jobs", "score_arrays", "what_if"]
__version__ = "0.1.0"
