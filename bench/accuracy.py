"""Predicted vs measured for every calibration row, with the published layout
and with the layout the model picks itself.

    python bench/accuracy.py [--csv PATH ...] [--json] [--emit DIR]

Rows: ../shared/validation/calibration.csv and trnsched/data/calibration_rows.csv
(--csv, repeatable, replaces both).  For each row the model predicts twice: with
the row's published tp/pp/ep as hints, and with no hints at all (what a user who
does not know the layout gets).

Targets (issue 10): with hints, median absolute error <= 12% and no row off by
more than 1.6x (the leave-one-out form is `python bench/calibrate.py
--cross-validate`); MoE rows within 25%; without hints, every row within 1.3x of
its hinted prediction.
--emit writes each row as a jobs file plus the `trnsched score` command that predicts it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from paths import calibration_rows, csv_option
from trnsched.inputs.catalog import builtin_models
from trnsched.perf.validation import accuracy, representable, row_job

TARGETS = {"median_abs_error": 0.12, "worst_ratio": 1.6, "moe_abs_error": 0.25, "auto_ratio": 1.3}


def summarise(rows) -> dict:
    hinted = accuracy(rows)
    auto = accuracy(rows, hints=False)
    models = builtin_models()
    table = []
    for h, a, row in zip(hinted["rows"], auto["rows"], rows):
        moe = models[row["model"]].is_moe
        table.append({**h, "moe": moe, "layout_published": representable(row),
                      "predicted_auto": a["predicted"], "auto_over_hinted": a["predicted"] / h["predicted"]})
    moe_errors = [abs(r["rel_error"]) for r in table if r["moe"]]
    auto_ratios = [max(r["auto_over_hinted"], 1 / r["auto_over_hinted"]) for r in table]
    return {"rows": table,
            "median_abs_error": hinted["median_abs_error"], "worst_ratio": hinted["worst_ratio"],
            "median_abs_error_auto": auto["median_abs_error"], "worst_ratio_auto": auto["worst_ratio"],
            "moe_worst_abs_error": max(moe_errors, default=0.0),
            "worst_auto_over_hinted": max(auto_ratios, default=1.0),
            "targets": TARGETS}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    csv_option(ap)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--emit", metavar="DIR")
    args = ap.parse_args(argv)
    rows = calibration_rows(args.csv)
    if args.emit:
        out = Path(args.emit)
        out.mkdir(parents=True, exist_ok=True)
        for row in rows:
            job, flags = row_job(row)
            (out / f"{row['id']}.json").write_text(json.dumps({"jobs": [job]}, indent=1) + "\n")
            print(f"trnsched score {out / (row['id'] + '.json')} --chip-type {flags['chip_type']} --chips {flags['chips']}"
                  f"   # {row['metric']}")
        return 0
    result = summarise(rows)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{'row':34} {'metric':21} {'chip':5} {'n':>5} {'measured':>10} {'hinted':>10} {'error':>7} "
          f"{'no hints':>10} {'ratio':>6}")
    for r in result["rows"]:
        mark = ("M" if r["moe"] else " ") + (" " if r["layout_published"] else "*")
        print(f"{r['id']:34} {r['metric']:21} {r['chip_type']:5} {r['chips']:5d} {r['measured']:10.1f} "
              f"{r['predicted']:10.1f} {r['rel_error']:+7.1%} {r['predicted_auto']:10.1f} "
              f"{r['auto_over_hinted']:6.2f} {mark}")
    t = TARGETS
    print("\nM: MoE row.  *: the published layout is one the model cannot express (context or attention")
    print("data parallelism): both columns are the model's own layout.")
    print(f"with hints:    median absolute error {result['median_abs_error']:.1%} (target <= {t['median_abs_error']:.0%}),"
          f" worst ratio {result['worst_ratio']:.2f}x (target <= {t['worst_ratio']}x)")
    print(f"MoE rows:      worst absolute error {result['moe_worst_abs_error']:.1%} (target <= {t['moe_abs_error']:.0%})")
    print(f"without hints: median absolute error {result['median_abs_error_auto']:.1%}, worst ratio "
          f"{result['worst_ratio_auto']:.2f}x; furthest from the hinted prediction "
          f"{result['worst_auto_over_hinted']:.2f}x (target <= {t['auto_ratio']}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
