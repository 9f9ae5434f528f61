"""Fit the efficiency constants to the calibration rows (../shared/validation/
calibration.csv and trnsched/data/calibration_rows.csv).

    python bench/calibrate.py            # show the fit
    python bench/calibrate.py --write    # store it in the checkout's trnsched/data/calibration.json
                                         # (reinstall after a non-editable install)
    python bench/calibrate.py --cross-validate   # leave-one-out: each row predicted by a
                                                 # fit that never saw it

Minimises the sum of squared log errors by coordinate search (golden section on
each constant within physical bounds, a few sweeps).  Only constants that some
row constrains are fitted; the rest keep their stated estimates.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys

from paths import CALIBRATION_JSON, calibration_rows, csv_option
from trnsched.perf.validation import accuracy, predict

# (family or "global", constant, low, high, prior): the prior is the estimate
# before any fit (the cross-validation starts from it, so a held-out row cannot
# leak through the current values); the rows that pin each constant are named in
# docs/MODEL.md.
FITTED = [
    ("ampere", "eff_bf16", 0.3, 0.9, 0.62),
    ("hopper", "eff_bf16", 0.3, 0.9, 0.55),
    ("hopper", "eff_fp8", 0.2, 0.9, 0.45),
    ("hopper", "eff_prefill", 0.5, 1.5, 1.0),
    ("hopper", "request_overhead_ms", 0.0, 40.0, 15.0),
    ("blackwell", "eff_fp4", 0.1, 0.9, 0.45),
    ("blackwell", "eff_prefill", 0.2, 1.5, 1.0),
    ("trainium1", "eff_bf16", 0.2, 0.9, 0.5),
    ("trainium1", "eff_prefill", 0.2, 1.5, 1.0),
    ("trainium1", "layer_overhead_us", 20.0, 400.0, 175.0),
    ("trainium2", "eff_prefill", 0.2, 1.5, 1.0),
    ("trainium2", "layer_overhead_us", 20.0, 400.0, 175.0),
    ("global", "expert_w0", 0.0, 20000.0, 2000.0),
    ("global", "gemm_w0", 0.0, 512.0, 256.0),
]
TIED = {("ampere", "eff_fp8"): ("ampere", "eff_bf16"), ("trainium1", "eff_fp8"): ("trainium1", "eff_bf16")}


def loss(rows, table) -> float:
    return sum(math.log(predict(r, table) / float(r["value"])) ** 2 for r in rows)


def _get(table, scope, key):
    return table["global"][key] if scope == "global" else table["families"][scope][key]


def _set(table, scope, key, value):
    if scope == "global":
        table["global"][key] = value
        return
    table["families"][scope][key] = value
    for (f2, k2), (f1, k1) in TIED.items():
        if (f1, k1) == (scope, key):
            table["families"][f2][k2] = value


def fit(rows, table, sweeps: int = 3):
    table = copy.deepcopy(table)
    g = (math.sqrt(5) - 1) / 2
    for _ in range(sweeps):
        for fam, key, lo, hi, _ in FITTED:
            def f(x):
                _set(table, fam, key, x)
                return loss(rows, table)
            current = _get(table, fam, key)
            base = f(current)
            if f(lo) == base == f(hi):
                # No row left in the fit depends on this constant (leave-one-out
                # can hold out the only one): keep its stated estimate rather than
                # let the search drift to a bound on a flat loss.
                _set(table, fam, key, current)
                continue
            a, b = lo, hi
            c, d = b - g * (b - a), a + g * (b - a)
            fc, fd = f(c), f(d)
            for _ in range(30):
                if fc < fd:
                    b, d, fd = d, c, fc
                    c = b - g * (b - a)
                    fc = f(c)
                else:
                    a, c, fc = c, d, fd
                    d = a + g * (b - a)
                    fd = f(d)
            _set(table, fam, key, round((a + b) / 2, 4))
    return table


def cross_validate(rows, table) -> int:
    """Refit without each row in turn and predict it: the error a new measurement
    of the same kind should expect, rather than the error on rows the fit has seen."""
    errors = []
    table = copy.deepcopy(table)
    for fam, key, _, _, prior in FITTED:
        _set(table, fam, key, prior)
    print(f"{'held-out row':32} {'measured':>10} {'predicted':>10} {'error':>7}")
    for i, row in enumerate(rows):
        fitted = fit(rows[:i] + rows[i + 1:], table, sweeps=2)
        pred = predict(row, fitted)
        err = (pred - float(row["value"])) / float(row["value"])
        errors.append(abs(err))
        print(f"{row['id']:32} {float(row['value']):10.1f} {pred:10.1f} {err:+7.1%}")
    errors.sort()
    median = errors[len(errors) // 2] if len(errors) % 2 else 0.5 * sum(errors[len(errors) // 2 - 1:len(errors) // 2 + 1])
    worst = max(errors)
    print(f"\nleave-one-out median absolute error {median:.1%}, worst {worst:.1%}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    csv_option(ap)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--cross-validate", action="store_true")
    args = ap.parse_args(argv)
    rows = calibration_rows(args.csv)
    path = CALIBRATION_JSON
    table = json.loads(path.read_text())
    if args.cross_validate:
        return cross_validate(rows, table)
    before = accuracy(rows, table)
    fitted = fit(rows, table)
    after = accuracy(rows, fitted)
    for fam, key, _, _, _ in FITTED:
        print(f"{fam:10} {key:20} {_get(table, fam, key):>9} -> {_get(fitted, fam, key)}")
    print(f"median abs error {before['median_abs_error']:.1%} -> {after['median_abs_error']:.1%}; "
          f"worst ratio {before['worst_ratio']:.2f} -> {after['worst_ratio']:.2f}")
    if args.write:
        fitted["fitted"] = [f"{fam}.{key}" for fam, key, _, _, _ in FITTED]
        path.write_text(json.dumps(fitted, indent=1) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
