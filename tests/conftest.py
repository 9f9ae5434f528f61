from pathlib import Path

import numpy as np
import pytest

from trnsched.inputs.catalog import chip_catalog
from trnsched.inputs.generate import random_job
from trnsched.inputs.jobs import parse_job
from trnsched.perf import columns as col
from trnsched.perf.tables import chip_table, job_table

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CALIBRATION_CSV = SHARED / "validation" / "calibration.csv"


def random_instance_of(rng, make_job, jobs: int, size: int, multiples=(1, 1, 3, 5)):
    """Random jobs from make_job(rng, i), all chip types, and `size` candidates over
    1..12k chips (powers of two times `multiples`), a fifth of them spread over up
    to two more domains than they need."""
    jobs = [parse_job(make_job(rng, i)) for i in range(jobs)]
    chips = list(chip_catalog().values())
    jt, ct = job_table(jobs), chip_table(chips)
    ji = rng.integers(0, len(jobs), size)
    ci = rng.integers(0, len(chips), size)
    n = (2 ** rng.integers(0, 13, size)) * rng.choice(list(multiples), size)
    natural = np.ceil(n / ct[ci, col.C_DOMAIN])
    dom = np.maximum(1, natural + rng.integers(0, 3, size) * (rng.random(size) < 0.2)).astype(np.int64)
    return jobs, chips, jt, ct, (ji, ci, n.astype(np.int64), dom)


def one_rack_three_jobs():
    """One 8-chip H100 node; a priority-3 job that needs all of it and two
    priority-2 jobs that need half of it each: priority order places 3, priority
    per chip 4."""
    svc = {"kind": "infer", "model": "llama3-8b", "prompt_tokens": 128, "output_tokens": 64, "rate_rps": 0,
           "duration_h": 1.0, "chip_types": ["h100"]}
    jobs_data = [{"id": "big", "priority": 3, "chips": 8, **svc},
                 {"id": "half-a", "priority": 2, "chips": 4, **svc}, {"id": "half-b", "priority": 2, "chips": 4, **svc}]
    return jobs_data, {"racks": [{"id": "n", "chips": {"h100": 8}}]}


@pytest.fixture(scope="session")
def random_instance():
    """Random jobs (the benchmark's distribution), all chip types, 4,000 candidates."""
    return random_instance_of(np.random.default_rng(20261126), random_job, 400, 4000)
