"""The bad-input contract, fuzzed at length: `python bench/fuzz.py --examples 5000`.

Draws mutated jobs and fleet files (tests/fuzzing.py: wrong types, nulls,
NaN/Infinity, huge, negative and fractional numbers, deep nesting, unknown and
missing fields, other encodings, stray bytes) and runs each through `trnsched
solve --policy greedy -o OUT` with OUT already holding other bytes.  Prints how
the command answered (exit 0 with a checked result, or exit 2 with one line)
and every contract violation; exits 1 if there was one.  Results and the
command are recorded in bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from fuzzing import cases, run_case  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0, help="the same seed draws the same inputs")
    args = ap.parse_args()
    exits: collections.Counter[str] = collections.Counter()
    violations: list[str] = []

    # Generation only: a violation is reported and counted, not shrunk, so the
    # run covers all its examples.
    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=cases())
    def run(case):
        with tempfile.TemporaryDirectory() as folder:
            code, broken = run_case(case, Path(folder))
        exits[f"exit {code}"] += 1
        if broken is not None:
            violations.append(f"{case.what}\n    -> {broken}")

    began = time.perf_counter()
    run()
    took = time.perf_counter() - began
    total = sum(exits.values())
    answered = ", ".join(f"{n} {k}" for k, n in sorted(exits.items()))
    print(f"{total} fuzzed inputs in {took:.0f} s ({answered}): {len(violations)} contract violations")
    for v in violations[:50]:
        print(f"  {v}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
