"""`trnsched score`, the what-if view, and the calibrated model's accuracy."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from trnsched.cli import main
from conftest import CALIBRATION_CSV
from trnsched.perf.validation import accuracy, load_rows, predict, row_job

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "score.json"
needs_shared = pytest.mark.skipif(not CALIBRATION_CSV.exists(), reason="../shared/validation not present")


def run(*args):
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_score_json_rows():
    rows = json.loads(run("score", str(EXAMPLE), "--json"))
    assert rows
    for r in rows:
        assert set(r) >= {"job", "chip_type", "chips", "domains", "feasible", "reason", "metrics"}
        assert r["domains"] >= 1
    train = next(r for r in rows if r["job"] == "llama3-70b-pretrain" and r["feasible"])
    assert {"step_time_s", "tokens_per_s", "mfu", "power_kw", "energy_kwh", "cost_usd"} <= set(train["metrics"])
    infer = next(r for r in rows if r["job"] == "chat-70b" and r["feasible"])
    assert {"ttft_ms", "tpot_ms", "max_batch", "output_tokens_per_s", "replicas"} <= set(infer["metrics"])
    assert infer["metrics"]["ttft_ms"] <= 1000 and infer["metrics"]["tpot_ms"] <= 40


def test_score_exact_count_packs_into_standard_domains():
    rows = json.loads(run("score", str(EXAMPLE), "--chip-type", "h100", "--chips", "1024", "--json"))
    assert rows and all(r["chips"] == 1024 and r["domains"] == 128 for r in rows)


def test_stack_and_allow_list_respected(tmp_path):
    p = tmp_path / "j.json"
    p.write_text(json.dumps([{"id": "n", "kind": "infer", "model": "llama3-8b", "prompt_tokens": 10,
                              "output_tokens": 10, "stack": "neuron"},
                             {"id": "g", "kind": "infer", "model": "llama3-8b", "prompt_tokens": 10,
                              "output_tokens": 10, "chip_types": ["b200"]}]))
    rows = json.loads(run("score", str(p), "--json"))
    assert {r["chip_type"] for r in rows if r["job"] == "n"} == {"trn1", "trn2", "trn3"}
    assert {r["chip_type"] for r in rows if r["job"] == "g"} == {"b200"}


def test_table_output_is_readable():
    out = run("score", str(EXAMPLE), "--chip-type", "gb200")
    assert "llama3-70b-pretrain" in out and "TTFT ms" in out and "gb200" in out


def test_more_chips_more_throughput_over_doublings():
    # Doubling the chips never slows a job down (between other counts the smallest
    # pipeline that fits can be a worse layout than a deeper one: docs/MODEL.md).
    rows = [r for r in json.loads(run("score", str(EXAMPLE), "--chip-type", "h100", "--json"))
            if r["job"] == "llama3-70b-pretrain" and r["feasible"] and r["chips"] & (r["chips"] - 1) == 0]
    assert len(rows) >= 4
    tps = [r["metrics"]["tokens_per_s"] for r in sorted(rows, key=lambda r: r["chips"])]
    assert tps == sorted(tps)


PACKAGE_ROWS = Path(__file__).resolve().parents[1] / "trnsched" / "data" / "calibration_rows.csv"


@needs_shared
def test_accuracy_targets():
    # In-sample (the fit has seen every row): bench/accuracy.py and calibrate.py
    # --cross-validate report the figures, and the leave-one-out ones, in full.
    rows = load_rows(CALIBRATION_CSV) + load_rows(PACKAGE_ROWS)
    result = accuracy(rows)
    assert result["median_abs_error"] <= 0.12
    assert result["worst_ratio"] <= 1.6
    moe = [r for r, row in zip(result["rows"], rows) if row["model"] in ("deepseek-v3", "mixtral-8x7b")]
    assert moe and max(abs(r["rel_error"]) for r in moe) <= 0.25


def test_package_rows_carry_their_source():
    rows = load_rows(PACKAGE_ROWS)
    assert len(rows) >= 8
    for row in rows:
        assert row["source"] and row["quote"] and row["date"], row["id"]
        assert float(row["value"]) > 0


@needs_shared
def test_calibration_rows_are_job_files_plus_flags(tmp_path):
    row = next(r for r in load_rows(CALIBRATION_CSV) if r["metric"] == "ttft_ms")
    job, flags = row_job(row)
    p = tmp_path / "row.json"
    p.write_text(json.dumps({"jobs": [job]}))
    out = json.loads(run("score", str(p), "--chip-type", flags["chip_type"], "--chips", str(flags["chips"]), "--json"))
    assert out[0]["metrics"]["ttft_ms"] == pytest.approx(predict(row), rel=1e-6)


def test_fleet_file_overrides_and_adds_chip_types(tmp_path):
    jobs = tmp_path / "j.json"
    jobs.write_text(json.dumps([{"id": "t", "kind": "train", "tokens": 1e10, "seq_len": 2048, "batch_seqs": 64,
                                 "model": {"params_b": 7, "layers": 32, "hidden": 4096, "heads": 32}}]))
    fleet = tmp_path / "fleet.json"
    fleet.write_text(json.dumps({"pue": 1.1, "racks": [{"id": "r0", "chips": {"mi300x": 8}}], "chip_types": {
        "h100": {"price_per_chip_hour": 1.0},
        "mi300x": {"stack": "cuda", "family": "hopper", "peak_bf16_tflops": 1307, "peak_fp8_tflops": 2615,
                   "hbm_gb": 192, "hbm_tbps": 5.3, "tdp_w": 750, "idle_w": 100, "domain_size": 8,
                   "scaleup_gbps": 448, "scaleup_latency_us": 2, "scaleout_gbps": 50,
                   "scaleout_latency_us": 12, "price_per_chip_hour": 4.0}}}))
    base = {r["chip_type"]: r for r in json.loads(run("score", str(jobs), "--chips", "8", "--json"))}
    over = {r["chip_type"]: r for r in json.loads(run("score", str(jobs), "--chips", "8", "--json", "--fleet", str(fleet)))}
    assert "mi300x" in over and "mi300x" not in base and over["mi300x"]["feasible"]
    hours = over["h100"]["metrics"]["duration_h"]
    assert over["h100"]["metrics"]["cost_usd"] == pytest.approx(8 * 1.0 * hours, rel=1e-5)
    # PUE 1.1 instead of the default 1.2 scales the power at the wall.
    assert over["h100"]["metrics"]["power_kw"] == pytest.approx(base["h100"]["metrics"]["power_kw"] * 1.1 / 1.2, rel=1e-5)


def test_chips_command_shows_sources():
    data = json.loads(run("chips", "--json"))
    assert set(data) >= {"a100", "h100", "h200", "b200", "gb200", "trn1", "trn2", "trn3"}
    for chip in data.values():
        for key in ("peak_bf16_tflops", "hbm_gb", "tdp_w", "price_per_chip_hour"):
            assert chip[key]["source"] and chip[key]["status"] in ("official", "official-secondary", "secondary",
                                                                    "estimate", "unverified")
