"""Predicted vs measured for every row of shared/validation/calibration.csv.

    python bench/accuracy.py [--csv PATH] [--json] [--emit DIR]

Targets: median absolute error <= 15%, no row off by more than 2x.
--emit writes each row as a jobs file plus the `trnsched score` command that predicts it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from paths import csv_option
from trnsched.perf.validation import accuracy, load_rows, row_job


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    csv_option(ap)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--emit", metavar="DIR")
    args = ap.parse_args(argv)
    rows = load_rows(args.csv)
    result = accuracy(rows)
    if args.emit:
        out = Path(args.emit)
        out.mkdir(parents=True, exist_ok=True)
        for row in rows:
            job, flags = row_job(row)
            (out / f"{row['id']}.json").write_text(json.dumps({"jobs": [job]}, indent=1) + "\n")
            print(f"trnsched score {out / (row['id'] + '.json')} --chip-type {flags['chip_type']} --chips {flags['chips']}"
                  f"   # {row['metric']}")
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{'row':32} {'metric':22} {'chip':5} {'n':>5} {'measured':>10} {'predicted':>10} {'error':>7}")
    for r in result["rows"]:
        print(f"{r['id']:32} {r['metric']:22} {r['chip_type']:5} {r['chips']:5d} {r['measured']:10.1f} "
              f"{r['predicted']:10.1f} {r['rel_error']:+7.1%}")
    print(f"\nmedian absolute error {result['median_abs_error']:.1%} (target <= 15%)   "
          f"worst ratio {result['worst_ratio']:.2f}x (target <= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
