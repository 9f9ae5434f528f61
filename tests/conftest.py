import numpy as np
import pytest

from trnsched import _columns as col
from trnsched.catalog import builtin_models, chip_catalog
from trnsched.jobs import parse_job
from trnsched.tables import chip_table, job_table


def random_job(rng, i):
    models = sorted(builtin_models())
    model = models[rng.integers(len(models))]
    precision = ("bf16", "fp8")[rng.integers(2)]
    if rng.random() < 0.5:
        raw = dict(id=f"t{i}", kind="train", model=model, precision=precision,
                   seq_len=int(2 ** rng.integers(9, 15)), batch_seqs=int(2 ** rng.integers(0, 12)),
                   tokens=float(10 ** rng.uniform(8, 13)))
        if rng.random() < 0.3:
            raw["deadline_h"] = float(rng.uniform(1, 2000))
        if rng.random() < 0.15:
            raw["parallelism"] = {"tp": int(2 ** rng.integers(0, 4)), "pp": int(rng.integers(1, 9))}
    else:
        raw = dict(id=f"i{i}", kind="infer", model=model, precision=precision,
                   prompt_tokens=int(rng.integers(1, 9000)), output_tokens=int(rng.integers(1, 3000)),
                   rate_rps=float(rng.uniform(0, 60)), duration_h=float(rng.uniform(0.5, 48)))
        if rng.random() < 0.5:
            raw["slo"] = {"ttft_ms": float(rng.uniform(20, 4000)), "tpot_ms": float(rng.uniform(2, 120))}
        if rng.random() < 0.3:
            raw["batch"] = int(rng.integers(1, 600))
        if rng.random() < 0.1:
            raw["parallelism"] = {"tp": int(2 ** rng.integers(0, 4)), "dp": int(rng.integers(1, 4))}
    return parse_job(raw)


@pytest.fixture(scope="session")
def random_instance():
    """Random jobs, all chip types, and candidate arrays over 1..12k chips."""
    rng = np.random.default_rng(20261126)
    jobs = [random_job(rng, i) for i in range(400)]
    chips = list(chip_catalog().values())
    jt, ct = job_table(jobs), chip_table(chips)
    size = 4000
    ji = rng.integers(0, len(jobs), size)
    ci = rng.integers(0, len(chips), size)
    n = (2 ** rng.integers(0, 13, size)) * rng.choice([1, 1, 3, 5], size)
    natural = np.ceil(n / ct[ci, col.C_DOMAIN])
    dom = np.maximum(1, natural + rng.integers(0, 3, size) * (rng.random(size) < 0.2)).astype(np.int64)
    return jobs, chips, jt, ct, (ji, ci, n.astype(np.int64), dom)
