"""Disaggregated serving: the pool model (core and twin), its physics, and split
placements under every policy, held to the independent checker."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trnsched.inputs.catalog import chip_catalog
from trnsched.inputs.jobs import parse_job
from trnsched.integrations import kubernetes as k8s
from trnsched.inputs.fleet import default_fleet, parse_fleet
from trnsched.perf import columns as col
from trnsched.perf.scoring import score_pool_arrays
from trnsched.perf.tables import chip_table, job_table
from trnsched.result import workloads
from trnsched.solve import solve
from checker import check
from test_core import branch_job

ROOT = Path(__file__).resolve().parents[1]
RTOL = 1e-9
CHAT = {"id": "chat", "kind": "infer", "model": "llama3-70b", "precision": "fp8", "rate_rps": 20,
        "prompt_tokens": 2048, "output_tokens": 512, "slo": {"ttft_ms": 800, "tpot_ms": 40}, "duration_h": 24}


def pools(jobs, types, rows, backend="core"):
    chips = chip_catalog()
    jt, ct = job_table([parse_job(j) for j in jobs]), chip_table([chips[t] for t in types])
    rows = np.asarray(rows)
    return score_pool_arrays(jt, ct, rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3], backend=backend)


def one(job, prefill, decode, link=col.FUSED, backend="core"):
    out = pools([job], [prefill, decode], [(0, 0, 1, link)], backend)
    return {k: float(v[0]) for k, v in out.items()}


# --- the core and its twin ----------------------------------------------------------

def test_core_agrees_with_twin_on_random_pools():
    rng = np.random.default_rng(14)
    jobs = [branch_job(rng, i) for i in range(400)]
    services = [j for j in jobs if j["kind"] == "infer"]
    for j in services[::3]:
        j.pop("rate_rps", None)           # no rate: nothing to size
    types = sorted(chip_catalog())
    rows = [(rng.integers(len(services)), rng.integers(len(types)), rng.integers(len(types)), rng.integers(2))
            for _ in range(3000)]
    core, twin = pools(services, types, rows), pools(services, types, rows, backend="python")
    for k in core:
        x, y = np.asarray(core[k], float), np.asarray(twin[k], float)
        same = (x == y) | np.isclose(x, y, rtol=RTOL, atol=0.0)
        assert same.all(), f"{k}: {x[~same][:3]} vs {y[~same][:3]}"
    # Every outcome comes up, or agreement proves little.
    assert {col.OK, col.MEMORY, col.SLO_TTFT, col.SLO_TPOT, col.RATE} <= set(np.unique(core["reason"]).tolist())
    # No link carries more than it can: the busier side's share stays at 0.8.
    ok = core["reason"] == col.OK
    assert (core["kv_link_share"][ok] <= 0.8 + 1e-12).all()


def test_score_pools_checks_its_rows():
    with pytest.raises(IndexError):
        pools([CHAT], ["trn3"], [(0, 0, 1, col.FUSED)])
    chips = chip_catalog()
    jt, ct = job_table([parse_job(CHAT)]), chip_table([chips["trn3"]])
    with pytest.raises(ValueError):
        score_pool_arrays(jt, ct, [0], [0], [0, 0], [0])


# --- physics ------------------------------------------------------------------------

def test_pools_meet_the_slos_and_carry_the_rate():
    out = one(CHAT, "gb200", "trn3")
    assert out["reason"] == col.OK
    assert out["ttft_s"] <= 0.8 and out["tpot_s"] <= 0.04
    assert out["tokens_per_s"] == pytest.approx(20 * 512)
    assert 0 < out["prefill_util"] <= 0.8 and 0 < out["decode_util"] <= 0.9
    assert out["prefill_chips"] == out["prefill_replicas"] * out["prefill_tp"] * out["prefill_pp"]
    assert out["decode_chips"] == out["decode_replicas"] * out["decode_tp"] * out["decode_pp"]
    assert out["kv_bytes"] == 2048 * 80 * 2048 * 1     # prompt x layers x (8 kv heads x 128 x K,V) x fp8


def test_the_ttft_slo_moves_only_the_prefill_pool():
    # Splitting means no prefill ever interrupts decode: the decode pool, and TPOT,
    # do not see the TTFT target.
    loose, tight = (one({**CHAT, "slo": {"ttft_ms": t, "tpot_ms": 40}}, "trn3", "trn3") for t in (3000, 450))
    for k in ("decode_chips", "decode_tp", "decode_batch", "tpot_s", "decode_power_kw"):
        assert loose[k] == tight[k], k
    assert tight["prefill_chips"] > loose["prefill_chips"] and tight["ttft_s"] < loose["ttft_s"]


def test_the_fused_fabric_carries_the_kv_cache_faster():
    fused, out = (one(CHAT, "gb200", "trn3", link) for link in (col.FUSED, col.SCALE_OUT))
    assert fused["kv_transfer_s"] < out["kv_transfer_s"] / 10
    assert fused["ttft_s"] < out["ttft_s"]
    assert fused["decode_chips"] == out["decode_chips"] and fused["tpot_s"] == out["tpot_s"]


def test_pools_grow_with_the_rate():
    sizes = [one({**CHAT, "rate_rps": r}, "gb200", "gb200") for r in (5, 20, 80)]
    for a, b in zip(sizes, sizes[1:]):
        assert b["prefill_chips"] >= a["prefill_chips"] and b["decode_chips"] >= a["decode_chips"]
        assert b["cost_usd"] > a["cost_usd"]
    assert sizes[-1]["prefill_chips"] >= 8 * sizes[0]["prefill_chips"] / 2


def test_a_feasible_decode_layout_survives_a_slower_wider_one():
    # tp 1 meets a 15 ms TPOT; wider ones miss it at batch 1: the pool is tp 1, not an SLO miss.
    job = {"id": "oss", "kind": "infer", "model": "gpt-oss-120b", "precision": "fp8", "rate_rps": 5,
           "prompt_tokens": 1024, "output_tokens": 256, "slo": {"tpot_ms": 15}}
    out = one(job, "gb200", "gb200")
    assert out["reason"] == col.OK and out["tpot_s"] <= 0.015


def test_the_network_adds_pools_where_it_cannot_carry_the_kv_caches():
    # A small model at a high rate over scale-out: the links, not the chips, set the pools.
    job = {"id": "mpt", "kind": "infer", "model": "mpt-7b", "rate_rps": 50, "prompt_tokens": 2048,
           "output_tokens": 256}
    out, fused = one(job, "gb200", "a100", col.SCALE_OUT), one(job, "gb200", "a100", col.FUSED)
    assert out["reason"] == col.OK and out["kv_link_share"] <= 0.8
    assert out["prefill_chips"] + out["decode_chips"] > fused["prefill_chips"] + fused["decode_chips"]


def test_a_service_without_a_rate_has_nothing_to_size():
    assert one({**CHAT, "rate_rps": 0}, "gb200", "trn3")["reason"] == col.RATE


def test_an_unreachable_ttft_is_an_slo_miss():
    assert one({**CHAT, "slo": {"ttft_ms": 5, "tpot_ms": 40}}, "trn3", "trn3")["reason"] == col.SLO_TTFT
    assert one({**CHAT, "slo": {"ttft_ms": 800, "tpot_ms": 1}}, "trn3", "trn3")["reason"] == col.SLO_TPOT


# --- placement ----------------------------------------------------------------------

def hybrid(cap=None, used=None):
    rack = {"id": "hy", "pod": "p", "chips": {"trn3": 72, "gb200": 36}, "power_cap_kw": cap}
    if used:
        rack["used"] = used
    return {"racks": [rack]}


FP4_RAG = {"id": "rag", "kind": "infer", "model": "llama3-70b", "precision": "fp4", "rate_rps": 30,
           "prompt_tokens": 6144, "output_tokens": 256, "slo": {"ttft_ms": 1500, "tpot_ms": 40}, "duration_h": 24}


@pytest.mark.parametrize("policy", ["cpsat", "greedy", "first-fit"])
def test_a_cross_type_split_on_a_hybrid_rack_under_every_policy(policy):
    # fp4 prefill is cheapest on GB200 (FP4 arithmetic), decode on Trainium3 (HBM
    # bandwidth per dollar): the cost objective splits across the rack's two types.
    jobs = {"jobs": [FP4_RAG]}
    result = solve(jobs, hybrid(), objective="cost", policy=policy).to_dict()
    check(jobs, hybrid(), result)
    (p,) = result["placements"]
    if policy == "first-fit":      # fewest chips first: whatever it takes, it is checked above
        return
    assert [(pool["role"], pool["chip_type"]) for pool in p["pools"]] == [("prefill", "gb200"), ("decode", "trn3")]
    assert p["link"] == "scale_up" and p["chip_type"] == "gb200+trn3"
    assert {a["rack"] for pool in p["pools"] for a in pool["allocations"]} == {"hy"}
    assert p["metrics"]["kv_transfer_ms"] < 5


def test_the_hybrid_racks_cap_covers_both_pools():
    jobs = {"jobs": [{**FP4_RAG, "disaggregation": "require"}]}
    free = solve(jobs, hybrid(), objective="cost").to_dict()
    (p,) = free["placements"]
    fleet = parse_fleet(hybrid())
    # IT watts each pool adds over its chips' idle and host draw (the rack's baseline).
    added = [pool["metrics"]["power_kw"] / fleet.pue * 1000
             - pool["chips"] * (fleet.chip_types[pool["chip_type"]].idle_w + fleet.chip_types[pool["chip_type"]].host_w)
             for pool in p["pools"]]
    baseline = fleet.baseline_kw(fleet.racks[0]) * 1000
    # A cap with room for either pool alone but not for both together.
    cap = baseline + sum(added) - 100
    assert baseline + max(added) < cap
    tight = hybrid(cap=cap / 1000)
    result = solve(jobs, tight, objective="cost").to_dict()
    check(jobs, tight, result)
    shape = [(pool["chip_type"], pool["chips"]) for pool in p["pools"]]
    assert all([(pool["chip_type"], pool["chips"]) for pool in q["pools"]] != shape for q in result["placements"])


@pytest.mark.parametrize("policy", ["cpsat", "greedy", "first-fit"])
def test_both_pools_or_neither(policy):
    # Room for a decode pool but not for any prefill pool: the required split is
    # unplaced, never half-placed, and says why.
    jobs = {"jobs": [{**CHAT, "disaggregation": "require", "chip_types": ["gb200"]}]}
    fleet = hybrid(used={"gb200": 33})
    result = solve(jobs, fleet, policy=policy).to_dict()
    check(jobs, fleet, result)
    assert not result["placements"]
    (u,) = result["unplaced"]
    assert "disaggregation" in u["reason"]


def test_a_split_short_of_chips_is_not_blamed_on_power():
    # Room for two fused splits on an uncapped UltraServer, not for a third: it is
    # short of chips (both pools together on one rack), and says so.
    jobs = {"jobs": [{**CHAT, "id": f"s{i}", "rate_rps": 80, "disaggregation": "require", "chip_types": ["trn3"]}
                     for i in range(3)]}
    fleet = {"racks": [{"id": "us", "chips": {"trn3": 144}, "used": {"trn3": 50}}]}     # 94 free, 44 a split
    result = solve(jobs, fleet, policy="greedy").to_dict()
    check(jobs, fleet, result)
    (u,) = result["unplaced"]
    assert "power" not in u["reason"] and "short" in u["reason"], u["reason"]


def test_never_and_require():
    jobs = {"jobs": [{**CHAT, "id": "a", "disaggregation": "never"}, {**CHAT, "id": "b", "disaggregation": "require"},
                     {**CHAT, "id": "c"}]}
    result = solve(jobs, None).to_dict()
    check(jobs, json.loads((ROOT / "trnsched" / "data" / "default_fleet.json").read_text()), result)
    by = {p["job"]: p for p in result["placements"]}
    assert "pools" not in by["a"] and "pools" in by["b"]


def test_require_without_a_rate_is_an_input_error(tmp_path):
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps({"jobs": [{**CHAT, "rate_rps": 0, "disaggregation": "require"}]}))
    run = subprocess.run([sys.executable, "-m", "trnsched", "solve", str(path)], capture_output=True, text=True)
    assert run.returncode == 2 and "disaggregation" in run.stderr and "chat" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_an_unplaced_service_says_whether_disaggregation_was_tried():
    jobs = {"jobs": [{**CHAT, "id": "off", "disaggregation": "never", "chip_types": ["gb200"]},
                     {**CHAT, "id": "on", "chip_types": ["gb200"]}]}
    full = hybrid(used={"gb200": 36})
    result = solve(jobs, full).to_dict()
    reasons = {u["job"]: u["reason"] for u in result["unplaced"]}
    assert "disaggregation is off" in reasons["off"]
    assert "disaggregation tried" in reasons["on"] and "prefill" in reasons["on"]


def test_splits_over_a_horizon_are_checked_in_time():
    jobs = {"jobs": [{**FP4_RAG, "id": f"r{i}", "arrival_h": 2.0 * i, "duration_h": 6,
                      "disaggregation": "require"} for i in range(4)]}
    result = solve(jobs, hybrid(), objective="cost", horizon_h=48, time_limit=5).to_dict()
    check(jobs, hybrid(), result)
    assert len(result["placements"]) == 4 and all(p.get("pools") for p in result["placements"])


def test_the_serving_example_splits_a_service_across_a_hybrid_rack():
    run = subprocess.run([sys.executable, "-m", "trnsched", "solve", str(ROOT / "examples" / "serving.json"),
                          "--json"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    check(json.loads((ROOT / "examples" / "serving.json").read_text()),
          json.loads((ROOT / "trnsched" / "data" / "default_fleet.json").read_text()), result)
    hybrid_racks = {r.id for r in default_fleet().racks if r.hybrid}
    crossed = [p for p in result["placements"] if p.get("pools") and p["link"] == "scale_up"
               and len({pool["chip_type"] for pool in p["pools"]}) == 2
               and {a["rack"] for a in p["allocations"]} <= hybrid_racks]
    assert crossed, "a service split across chip types on a hybrid rack"


def test_the_checker_rejects_broken_splits():
    jobs = {"jobs": [FP4_RAG]}
    result = solve(jobs, hybrid(), objective="cost").to_dict()
    check(jobs, hybrid(), result)
    (p,) = result["placements"]
    broken = json.loads(json.dumps(result))
    broken["placements"][0]["pools"][1]["chips"] += 1             # pools no longer sum to the chips
    with pytest.raises(AssertionError):
        check(jobs, hybrid(), broken)
    broken = json.loads(json.dumps(result))
    broken["placements"][0]["pools"][0]["chip_type"] = "trn3"     # a pool on chips the rack lacks free
    broken["placements"][0]["pools"][0]["allocations"][0]["chips"] = 72
    broken["placements"][0]["pools"][0]["chips"] = 72
    broken["placements"][0]["chips"] = 72 + p["pools"][1]["chips"]
    broken["placements"][0]["allocations"] = [{"rack": "hy", "chips": broken["placements"][0]["chips"]}]
    with pytest.raises(AssertionError):
        check(jobs, hybrid(), broken)
    broken = json.loads(json.dumps(result))
    broken["placements"][0]["metrics"]["ttft_ms"] = 2000           # over the TTFT SLO
    with pytest.raises(AssertionError):
        check(jobs, hybrid(), broken)


def test_a_split_exports_as_one_workload_per_pool():
    jobs = {"jobs": [FP4_RAG]}
    fleet = parse_fleet(hybrid())
    result = solve(jobs, fleet, objective="cost").to_dict()
    assert [w["job"] for w in workloads(result["placements"][0])] == ["rag-prefill", "rag-decode"]
    manifests = k8s.manifests(result, fleet)
    assert sorted(manifests) == ["priority-classes.json", "rag-decode.json", "rag-prefill.json"]
    for role in ("prefill", "decode"):
        notes = manifests[f"rag-{role}.json"]["metadata"]["annotations"]
        assert notes["trnsched.io/role"] == role and notes["trnsched.io/service"] == "rag"
