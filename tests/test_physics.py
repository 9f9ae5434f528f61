"""What an ML-systems engineer would check in a `trnsched score` sweep, over chip
types, models and counts (bench/physics.py prints the worst case of each)."""
import math

import pytest

from trnsched.inputs.catalog import builtin_models, chip_catalog
from trnsched.inputs.jobs import parse_job
from trnsched.whatif import what_if

CATALOG = chip_catalog()
MODELS = sorted(builtin_models())


def score(job, chip, n):
    (row,) = what_if([parse_job(job)], CATALOG, chip_type=chip, count=n)
    return row


def serve(model, **extra):
    return dict(id="s", kind="infer", model=model, precision="fp8", prompt_tokens=1024, output_tokens=256, **extra)


@pytest.mark.parametrize("chip", sorted(CATALOG))
def test_batch_one_latency_is_near_the_best_tensor_parallel_layout(chip):
    # A lone request on a deep pipeline keeps one stage busy at a time: the auto
    # layout must not trade it for a pipeline that looks good on paper.
    domain = CATALOG[chip].domain_size
    for model in MODELS:
        for n in (domain, 2 * domain):
            auto = score(serve(model, batch=1), chip, n)
            if not auto.feasible:
                continue
            flat = [score(serve(model, batch=1, parallelism={"tp": tp, "pp": 1}), chip, n)
                    for tp in (1, 2, 4, 8, 16, 32, 64, 128) if tp <= min(n, domain)]
            best = min((r.values["tpot_s"] for r in flat if r.feasible), default=math.inf)
            assert auto.values["tpot_s"] <= 1.3 * best, (model, chip, n)
            # One sequence in flight: throughput is one token per TPOT per replica, not pp of them.
            per_replica = auto.values["tokens_per_s"] / auto.values["replicas"]
            assert per_replica <= 1.0 / auto.values["tpot_s"] * (1 + 1e-9), (model, chip, n)


def test_load_slows_tokens_and_first_tokens():
    light = score(serve("llama3-70b", rate_rps=1.0), "h100", 32)
    heavy = score(serve("llama3-70b", rate_rps=30.0), "h100", 32)
    assert light.feasible and heavy.feasible
    assert heavy.values["tpot_s"] > light.values["tpot_s"] and heavy.values["ttft_s"] > light.values["ttft_s"]
    # Saturated, every other stream's prefill interrupts a stream's decode.
    saturated = score(serve("llama3-70b", offline=True), "h100", 32)
    alone = score(serve("llama3-70b", batch=1, parallelism={"tp": saturated.layout()["tp"]}), "h100", 32)
    assert saturated.values["tpot_s"] > 2 * alone.values["tpot_s"]


def test_offline_work_gets_the_most_throughput_and_a_service_a_practitioners_layout():
    for model, chip, n in (("llama3-70b", "h100", 16), ("llama3-8b", "h100", 8), ("mixtral-8x7b", "b200", 8)):
        service = score(serve(model), chip, n)
        offline = score(serve(model, offline=True), chip, n)
        assert offline.values["tokens_per_s"] >= service.values["tokens_per_s"] * (1 - 1e-9)
        lone = service.values["latency_s"]
        flat = [score(serve(model, parallelism={"tp": tp, "pp": 1}), chip, n)
                for tp in (1, 2, 4, 8) if tp <= n]
        best = min(r.values["latency_s"] for r in flat if r.feasible)
        assert lone <= 1.3 * best * (1 + 1e-9)


def test_an_slo_is_checked_at_the_load_the_candidate_carries():
    job = serve("llama3-70b", rate_rps=25.0, slo={"ttft_ms": 2000, "tpot_ms": 30})
    few, many = score(job, "h100", 8), score(job, "h100", 64)
    assert many.feasible
    assert many.values["tpot_s"] <= 0.030
    assert not few.feasible or few.values["tpot_s"] <= 0.030
