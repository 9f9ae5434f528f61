"""Published measurements (shared/validation/calibration.csv) as trnsched jobs.

Each row becomes a job dict plus `score` flags (--chip-type, --chips), so the
accuracy benchmark, the calibration fit and a user at the command line all
predict a row the same way.  Layout: the row's stated tp/pp/ep are passed as
hints (Neuron rows count tp in NeuronCores, converted to chips), except where
the run used something the model does not represent (context parallelism,
attention data parallelism): there the model picks its own layout, as it does
for every row when hints are turned off.

Rows come from two files: the shared set (../shared/validation/calibration.csv)
and the package's own (trnsched/data/calibration_rows.csv: MoE, Blackwell and
further measurements, each with its source and the quote it rests on).
"""
from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path
from typing import Mapping

from trnsched.inputs.catalog import chip_catalog
from trnsched.inputs.jobs import parse_job
from trnsched.perf.scoring import score_arrays
from trnsched.perf.tables import chip_row, job_row

TOKENS_FOR_DURATION = 1e10   # rows give throughput only; any total works


def load_rows(path: str | Path) -> list[dict]:
    """The rows of a calibration CSV (in a checkout: ../shared/validation/calibration.csv)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def representable(row: Mapping[str, str]) -> bool:
    """Whether the model can express the row's published layout."""
    return int(row.get("cp") or 1) <= 1 and not row.get("attention_dp")


def row_job(row: Mapping[str, str], hints: bool = True) -> tuple[dict, dict]:
    """(job dict for a jobs file, score flags) for one calibration row; with
    hints=False the model chooses the layout, as for a user who does not know it."""
    chips = chip_catalog()
    chip = chips[row["chip_type"]]
    n = int(row["chips"])
    layout: dict[str, int] = {}
    if hints and representable(row):
        if row.get("tp"):
            layout["tp"] = max(1, min(n, int(row["tp"]) // chip.tp_cores_per_chip))
        if row.get("pp"):
            layout["pp"] = int(row["pp"])
        if row.get("ep"):
            layout["ep"] = int(row["ep"])
    job = {"id": row["id"], "kind": row["kind"], "model": row["model"], "precision": row["precision"]}
    if row["kind"] == "train":
        job.update(seq_len=int(row["seq_len"]), batch_seqs=int(row["global_batch_seqs"]), tokens=TOKENS_FOR_DURATION)
    else:
        job.update(prompt_tokens=int(row["prompt_tokens"]), output_tokens=int(row["output_tokens"]))
        if row.get("batch"):
            job["batch"] = int(row["batch"])
        # A throughput row with neither a batch nor a rate measured the engine saturated.
        if row.get("offline") or (row["metric"] == "output_tokens_per_s" and not row.get("batch")
                                  and not row.get("rate_rps")):
            job["offline"] = True
        if row.get("rate_rps"):
            job["rate_rps"] = float(row["rate_rps"])
    if layout:
        job["parallelism"] = layout
    return job, {"chip_type": row["chip_type"], "chips": n}


def predict(row: Mapping[str, str], calib: Mapping | None = None, backend: str = "core",
            hints: bool = True) -> float:
    """The model's value for the row's metric."""
    job_dict, flags = row_job(row, hints)
    chip = chip_catalog()[flags["chip_type"]]
    n = flags["chips"]
    job = parse_job(job_dict)
    out = score_arrays(job_row(job)[None, :], chip_row(chip, calib=calib)[None, :], [0], [0], [n],
                       [math.ceil(n / chip.domain_size)], backend=backend)
    metric = row["metric"]
    if metric == "tokens_per_s_per_chip":
        return float(out["tokens_per_s"][0]) / n
    if metric == "output_tokens_per_s":
        return float(out["tokens_per_s"][0])
    if metric == "ttft_ms":
        return float(out["ttft_s"][0]) * 1e3
    if metric == "tpot_ms":
        return float(out["tpot_s"][0]) * 1e3
    raise ValueError(f"unknown metric {metric!r}")


def accuracy(rows, calib: Mapping | None = None, hints: bool = True) -> dict:
    """Per-row predicted vs measured and the summary the accuracy benchmark prints."""
    table = []
    for row in rows:
        measured = float(row["value"])
        pred = predict(row, calib, hints=hints)
        table.append({"id": row["id"], "metric": row["metric"], "chip_type": row["chip_type"],
                      "chips": int(row["chips"]), "measured": measured, "predicted": pred,
                      "rel_error": (pred - measured) / measured})
    errs = [abs(r["rel_error"]) for r in table]
    ratios = [max(r["predicted"] / r["measured"], r["measured"] / r["predicted"]) for r in table]
    return {"rows": table, "median_abs_error": statistics.median(errs), "worst_ratio": max(ratios)}
