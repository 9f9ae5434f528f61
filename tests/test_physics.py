"""What an ML-systems engineer would check in a `trnsched score` sweep, over chip
types, models and counts (bench/physics.py prints the worst case of each)."""
import math

import pytest

from trnsched.inputs.catalog import builtin_models, chip_catalog, default_pue
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
    slo = {"ttft_ms": 2000, "tpot_ms": 30}
    few, many = (score(serve("llama3-70b", rate_rps=60.0, slo=slo), "h100", n) for n in (8, 64))
    assert many.feasible and many.values["tpot_s"] <= 0.030
    # 8 GPUs meet the SLO for a lone request, but not at 60 req/s: their replicas
    # cannot take that many sequences within 30 ms TPOT.
    assert not few.feasible and few.reason in ("slo_tpot", "rate")
    assert score(serve("llama3-70b", batch=1, parallelism={"tp": 8}), "h100", 8).values["tpot_s"] <= 0.030
    # On the 64, more load means more sequences in flight and a slower token.
    lighter = score(serve("llama3-70b", rate_rps=25.0, slo=slo), "h100", 64)
    assert lighter.values["tpot_s"] < many.values["tpot_s"]


def test_serving_power_follows_the_work_under_any_load():
    # A replica with a sequence in flight decodes continuously: a light request rate
    # must not be costed at idle, and prefill draws full busy power.
    base = dict(serve("llama3-70b", parallelism={"tp": 8}))
    idle_kw = (CATALOG["h100"].idle_w + CATALOG["h100"].host_w) * default_pue() / 1000.0
    lone = per_chip_kw(score(dict(base, batch=1), "h100", 8), 8)
    light = per_chip_kw(score(dict(base, rate_rps=0.5), "h100", 8), 8)
    heavy = per_chip_kw(score(dict(base, rate_rps=8.0), "h100", 8), 8)
    assert lone > idle_kw + 0.05
    assert light > idle_kw + 0.5 * (lone - idle_kw)
    assert heavy > light
    # Long prompts, short answers: prefill dominates, so the chips draw nearly training power.
    prefill_heavy = dict(serve("llama3-70b", offline=True, parallelism={"tp": 8}), prompt_tokens=8000, output_tokens=64)
    training = per_chip_kw(score(train("llama3-8b", batch_tokens=1024 * 1024), "h100", 8), 8)
    assert per_chip_kw(score(prefill_heavy, "h100", 8), 8) > 0.85 * training


def test_a_service_with_no_slo_is_held_to_an_interactive_tpot():
    # No batch, SLO or rate: the practitioner's layout, its batch grown only while
    # TPOT stays within MLPerf's server limit (200 ms); offline work has no limit.
    for model, chip, n in (("llama3-70b", "trn2", 16), ("llama3-70b", "h100", 8), ("mixtral-8x7b", "b200", 8)):
        for precision in ("fp8", "fp4"):
            service = score(dict(serve(model), precision=precision), chip, n)
            offline = score(dict(serve(model, offline=True), precision=precision), chip, n)
            assert service.feasible and service.values["tpot_s"] <= 0.2 + 1e-9, (model, chip, precision)
            assert offline.values["tokens_per_s"] >= service.values["tokens_per_s"] * (1 - 1e-9)
            # TTFT at that load includes waiting for the other streams' prefills.
            lone = score(dict(serve(model, batch=1, parallelism={"tp": service.layout()["tp"],
                                                                  "pp": service.layout()["pp"]}),
                              precision=precision), chip, n)
            assert service.values["ttft_s"] >= lone.values["ttft_s"] * (1 - 1e-9)


def train(model, precision="bf16", **extra):
    return dict(dict(id="t", kind="train", model=model, precision=precision, tokens=1e9,
                     batch_tokens=4 * 1024 * 1024, seq_len=4096), **extra)


def per_chip_kw(row, n):
    return row.values["power_kw"] / n


@pytest.mark.parametrize("chip", sorted(CATALOG))
def test_decode_draws_less_than_compute_bound_work(chip):
    # Memory-bound decode leaves the tensor engines idle most of each step; a chip
    # serving one sequence must draw less than the same chip training.
    n = min(CATALOG[chip].domain_size, 16)
    training = score(train("llama3-8b", batch_tokens=1024 * 1024), chip, n)
    decoding = score(serve("llama3-70b", batch=1), chip, n)
    assert training.feasible and decoding.feasible
    assert per_chip_kw(decoding, n) < 0.8 * per_chip_kw(training, n), chip
    # And no work draws more than the chip's board power plus its host's share, at the facility's PUE.
    spec = CATALOG[chip]
    ceiling_kw = (spec.tdp_w + spec.host_w) * default_pue() / 1000.0
    assert per_chip_kw(training, n) <= ceiling_kw * (1 + 1e-9)


@pytest.mark.parametrize("model", ["llama3-8b", "llama3-70b", "llama3-405b", "gpt3-175b", "deepseek-v3"])
def test_trn3_spends_less_energy_per_token_than_trn2_in_fp8(model):
    # AWS (re:Invent 2024 preview): Trn3 has 40% better energy efficiency than Trn2,
    # i.e. ~0.71x the energy per token on FP8 matrix work.  Attention runs in bf16,
    # where Trn3's peak is Trn2's, so models whose attention is a large share of the
    # work gain less (Llama 3 8B at 4k tokens: ~0.9x).
    energy = {}
    for chip in ("trn2", "trn3"):
        row = score(train(model, "fp8"), chip, 128)
        assert row.feasible
        energy[chip] = row.values["energy_kwh"]
    assert 0.60 <= energy["trn3"] / energy["trn2"] <= 0.92, energy


def test_fp4_serves_from_blackwell_fp4_units_and_elsewhere_only_halves_the_weights():
    def offline(chip, precision):
        job = dict(serve("llama3-70b", offline=True, parallelism={"tp": 8}), precision=precision)
        return score(job, chip, 8).values["tokens_per_s"]
    # Saturated serving is mostly compute: B200 gains from its FP4 arithmetic, H100
    # (no FP4 units) does not.
    assert offline("b200", "fp4") > 1.1 * offline("b200", "fp8")
    assert offline("h100", "fp4") == pytest.approx(offline("h100", "fp8"), rel=0.05)
    # A lone request is weight reads: FP4 halves them on any chip; its prefill is no
    # faster on H100.
    h8 = score(serve("llama3-70b", batch=1, parallelism={"tp": 8}), "h100", 8)
    h4 = score(dict(serve("llama3-70b", batch=1, parallelism={"tp": 8}), precision="fp4"), "h100", 8)
    assert h4.values["ttft_s"] == pytest.approx(h8.values["ttft_s"], rel=0.02)
    assert h4.values["tpot_s"] < 0.95 * h8.values["tpot_s"]


def test_fp4_is_for_inference():
    from trnsched.inputs.errors import InputError
    with pytest.raises(InputError, match="precision"):
        parse_job(train("llama3-8b", "fp4"))


@pytest.mark.parametrize("model", ["llama3-70b", "deepseek-v3", "qwen3-235b-a22b", "mixtral-8x7b"])
@pytest.mark.parametrize("chip", ["h100", "gb200", "trn2", "trn3"])
def test_more_chips_never_slow_training_down_and_rarely_more_than_double_it(model, chip):
    # A fixed global batch over twice the chips: never slower (a practitioner's layout
    # for n chips still exists at 2n), at most ~2x unless the smaller count sits at
    # the memory wall (activation recompute, which the doubled count frees).
    job = train(model, "fp8", batch_tokens=1024 * 4096)
    rows = {n: score(job, chip, n) for n in (64, 128, 256, 512, 1024)}
    for n in (64, 128, 256, 512):
        small, big = rows[n], rows[2 * n]
        if not (small.feasible and big.feasible):
            continue
        ratio = big.values["tokens_per_s"] / small.values["tokens_per_s"]
        assert ratio >= 0.95, (n, ratio)
        recompute_relief = (1 + small.values["recompute"] / 3) / (1 + big.values["recompute"] / 3)
        assert ratio <= 2.5 * recompute_relief, (n, ratio)


@pytest.mark.parametrize("model", ["deepseek-v3", "qwen3-235b-a22b", "llama3-70b"])
def test_a_bigger_scale_up_domain_never_scores_worse_than_the_same_chips_split(model):
    from trnsched.perf.scoring import score_arrays
    from trnsched.perf.tables import chip_table, job_table
    job = parse_job(train(model, "fp8", batch_tokens=1024 * 4096))
    for chip, n in (("trn3", 144), ("trn3", 288), ("gb200", 144), ("trn2", 128), ("h100", 64)):
        domain = CATALOG[chip].domain_size
        natural = -(-n // domain)
        splits = [natural * k for k in (1, 2, 4, 8) if natural * k <= n]
        out = score_arrays(job_table([job]), chip_table([CATALOG[chip]]), [0] * len(splits), [0] * len(splits),
                           [n] * len(splits), splits)
        steps = [s if f else math.inf for s, f in zip(out["step_time_s"], out["feasible"])]
        assert steps == sorted(steps), (chip, n, splits, steps)
