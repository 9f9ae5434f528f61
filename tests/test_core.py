"""The compiled core and its pure-Python twin must agree."""
import math

import numpy as np
import pytest

import trnsched.perf._core as core
from trnsched.inputs.catalog import builtin_models, chip_catalog
from trnsched.inputs.jobs import parse_job
from trnsched.perf import columns as col
from trnsched.perf.scoring import score_arrays
from trnsched.perf.tables import chip_row, chip_table, job_row, job_table
from conftest import random_instance_of

RTOL = 1e-9


def assert_agree(a, b):
    for k in col.OUTPUTS:
        x, y = np.asarray(a[k], float), np.asarray(b[k], float)
        same = (x == y) | np.isclose(x, y, rtol=RTOL, atol=0.0)
        assert same.all(), f"{k}: {x[~same][:3]} vs {y[~same][:3]} at {np.flatnonzero(~same)[:3]}"


def test_extension_is_compiled():
    assert core.__file__.endswith((".so", ".pyd"))


def test_reasons_are_in_order_of_progress():
    # Declared once, in _core.pxd; explanations pick the reason that got furthest.
    assert [col.REASON_NAMES[r] for r in sorted(col.REASON_NAMES)] == [
        "ok", "no_layout", "memory", "batch", "slo_ttft", "slo_tpot", "rate", "deadline"]
    assert max(range(8), key=col.progress) == col.OK


def test_core_agrees_with_twin_on_random_candidates(random_instance):
    _, _, jt, ct, cand = random_instance
    compiled = score_arrays(jt, ct, *cand, backend="core")
    twin = score_arrays(jt, ct, *cand, backend="python")
    assert_agree(compiled, twin)
    # The random instance must exercise every outcome, or agreement proves little.
    reasons = set(np.unique(compiled["reason"]).tolist())
    assert {col.OK, col.MEMORY, col.BATCH, col.SLO_TTFT, col.SLO_TPOT, col.RATE, col.DEADLINE} <= reasons


def branch_job(rng, i):
    """Jobs that reach the branches random_job() (the benchmark's distribution)
    leaves out: fp4, offline work, no request rate, one-sided SLOs, MoE models
    half the time, and dp/ep hints for training."""
    models = sorted(builtin_models())
    moe = [m for m in models if builtin_models()[m].is_moe]
    pool = moe if rng.random() < 0.5 else models
    model = pool[rng.integers(len(pool))]
    if rng.random() < 0.5:
        raw = dict(id=f"t{i}", kind="train", model=model, precision=("bf16", "fp8")[rng.integers(2)],
                   seq_len=int(2 ** rng.integers(9, 15)), batch_seqs=int(2 ** rng.integers(0, 13)),
                   tokens=float(10 ** rng.uniform(8, 13)))
        if rng.random() < 0.3:
            raw["deadline_h"] = float(rng.uniform(1, 2000))
        hints = {k: int(2 ** rng.integers(0, top)) for k, top in (("tp", 4), ("pp", 5), ("dp", 8), ("ep", 8))
                 if rng.random() < 0.2}
        if hints:
            raw["parallelism"] = hints
        return raw
    raw = dict(id=f"i{i}", kind="infer", model=model, precision=("bf16", "fp8", "fp4")[rng.integers(3)],
               prompt_tokens=int(rng.integers(1, 9000)), output_tokens=int(rng.integers(1, 3000)),
               duration_h=float(rng.uniform(0.5, 48)))
    if rng.random() < 0.6:
        raw["rate_rps"] = float(10 ** rng.uniform(-2, 2.5))
    slo = {k: float(rng.uniform(lo, hi)) for k, lo, hi in (("ttft_ms", 20, 4000), ("tpot_ms", 2, 300))
           if rng.random() < 0.3}
    if slo:
        raw["slo"] = slo
    if rng.random() < 0.2:
        raw["batch"] = int(rng.integers(1, 600))
    if rng.random() < 0.2:
        raw["offline"] = True
    return raw


def test_core_agrees_with_twin_on_every_branch():
    jobs, _, jt, ct, cand = random_instance_of(np.random.default_rng(7), branch_job, 300, 3000, (1, 1, 3, 5, 9))
    compiled = score_arrays(jt, ct, *cand, backend="core")
    assert_agree(compiled, score_arrays(jt, ct, *cand, backend="python"))
    # Every ranking mode and outcome must come up, or agreement proves little.
    reasons = set(np.unique(compiled["reason"]).tolist())
    assert {col.OK, col.MEMORY, col.BATCH, col.SLO_TTFT, col.SLO_TPOT, col.RATE, col.DEADLINE} <= reasons
    modes = {j.precision for j in jobs} | {("offline" if j.offline else "") for j in jobs}
    assert {"fp4", "offline"} <= modes


def test_buffers_are_reused_and_give_the_same_results(random_instance):
    _, _, jt, ct, cand = random_instance
    first = score_arrays(jt, ct, *cand)
    again = score_arrays(jt, ct, *(a[:100] for a in cand), out=first)
    assert np.shares_memory(again["records"], first["records"])
    fresh = score_arrays(jt, ct, *(a[:100] for a in cand))
    assert_agree(again, fresh)


def test_threads_do_not_change_results(random_instance):
    _, _, jt, ct, cand = random_instance
    assert_agree(score_arrays(jt, ct, *cand, threads=1), score_arrays(jt, ct, *cand, threads=2))


def _one(job_raw, chip_name, n, domains=None, chip=None, backend="core"):
    chip = chip or chip_catalog()[chip_name]
    job = parse_job(job_raw)
    d = domains or math.ceil(n / chip.domain_size)
    out = score_arrays(job_row(job)[None], chip_row(chip)[None], [0], [0], [n], [d], backend=backend)
    ref = score_arrays(job_row(job)[None], chip_row(chip)[None], [0], [0], [n], [d], backend="python")
    assert_agree(out, ref)
    return {k: v[0] for k, v in out.items()}


TRAIN = dict(id="t", kind="train", model="llama3-8b", seq_len=4096, batch_seqs=512, tokens=1e11)
INFER = dict(id="i", kind="infer", model="llama3-70b", prompt_tokens=1024, output_tokens=256)


def test_one_chip_training_and_inference():
    t = _one(TRAIN | {"model": "llama2-7b"}, "h200", 1)
    assert t["feasible"] and t["tp"] == 1 and t["dp"] == 1
    i = _one(INFER | {"model": "llama3-8b"}, "h100", 1)
    assert i["feasible"] and i["replicas"] == 1 and i["batch"] >= 1


def test_memory_just_fits_and_just_does_not():
    base = chip_catalog()["h100"]
    job = INFER | {"model": "llama3-8b", "batch": 1, "parallelism": {"tp": 1}}
    need = _one(job, "h100", 1)["mem_per_chip"]
    usable_fraction = 0.9     # calibration.json mem_reserve
    from dataclasses import replace
    fits = replace(base, hbm_gb=need / usable_fraction / 1e9 * (1 + 1e-9))
    short = replace(base, hbm_gb=need / usable_fraction / 1e9 * (1 - 1e-6))
    assert _one(job, "h100", 1, chip=fits)["feasible"]
    r = _one(job, "h100", 1, chip=short)
    assert not r["feasible"] and r["reason"] == col.MEMORY


def test_moe_fp8_and_multi_domain_training():
    job = TRAIN | {"model": "deepseek-v3", "precision": "fp8", "batch_seqs": 4096}
    r = _one(job, "trn3", 144)
    assert r["feasible"] and r["ep"] > 1
    # The same chips over more domains push pipeline hops, gradient traffic and
    # all-to-all onto the slower scale-out network.
    spread = _one(job, "trn3", 144, domains=4)
    assert spread["step_time_s"] > r["step_time_s"]


def test_fp8_is_faster_than_bf16_where_the_chip_has_fp8():
    bf = _one(TRAIN, "h100", 64)
    f8 = _one(TRAIN | {"precision": "fp8"}, "h100", 64)
    assert f8["tokens_per_s"] > 1.2 * bf["tokens_per_s"]
    a_bf = _one(TRAIN, "a100", 64)
    a_f8 = _one(TRAIN | {"precision": "fp8"}, "a100", 64)
    assert a_f8["tokens_per_s"] == pytest.approx(a_bf["tokens_per_s"])


def test_no_chips_and_impossible_hints():
    assert _one(TRAIN, "h100", 8, domains=1)["feasible"]
    r = _one(TRAIN | {"parallelism": {"tp": 16}}, "h100", 8)
    assert r["reason"] == col.NO_LAYOUT


def test_reference_reasons_are_named():
    assert set(col.REASON_NAMES) == set(range(8))


def test_score_validates_shapes():
    jt = job_table([parse_job(TRAIN)])
    ct = chip_table(list(chip_catalog().values()))
    with pytest.raises(IndexError):
        score_arrays(jt, ct, [1], [0], [8], [1])
    with pytest.raises(ValueError):
        core.score(jt[:, :5].copy(), ct, np.zeros(1, np.intp), np.zeros(1, np.intp),
                    np.ones(1, np.int64), np.ones(1, np.int64))


def test_every_model_preset_scores_somewhere():
    for name in builtin_models():
        ok = any(_one(TRAIN | {"model": name, "batch_seqs": 4096}, c, 1152)["feasible"] for c in ("trn3", "gb200"))
        assert ok, name
