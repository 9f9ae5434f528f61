"""Speed of the scoring core: compiled Cython vs its pure-Python reference.

    python bench/bench_core.py [--candidates N] [--python-sample M] [--threads T] [--json]

Both score the same candidates: random jobs (trnsched.inputs.generate.
random_job, the distribution the core's tests use: dense and MoE training and
inference, with SLOs, rates, batches, hints and deadlines) on every chip type at
1 to 6,144 chips, generated job by job and chip type by chip type as the solver
does (--shuffle scores them in random order instead).  Pure Python runs on a
subsample and is reported per candidate; the two are checked to agree on it.
(Until issue 10 a numpy-vectorised twin was measured too: see bench/RESULTS.md.)
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

from trnsched.inputs.catalog import chip_catalog
from trnsched.inputs.generate import random_job
from trnsched.inputs.jobs import parse_job
from trnsched.perf import columns as col
from trnsched.perf.scoring import score_arrays
from trnsched.perf.tables import chip_table, job_table


def solver_candidates(rng, jobs, chips, total: int, shuffle: bool = False):
    """Candidates shaped as the solver makes them: job by job, chip type by chip
    type, chip counts in powers of two and whole scale-up domains, each packed
    into the fewest domains and, for a third of them, spread over one more."""
    ct = chip_table(chips)
    rows = []
    while len(rows) < total:
        for ji in range(len(jobs)):
            for ci in range(len(chips)):
                domain = int(ct[ci, col.C_DOMAIN])
                counts = sorted({2 ** k for k in range(13)} | {3 * 2 ** k for k in range(11)}
                                | {k * domain for k in range(1, 9)})
                for n in counts:
                    natural = -(-n // domain)
                    rows.append((ji, ci, n, natural))
                    if rng.random() < 0.33:
                        rows.append((ji, ci, n, natural + 1))
            if len(rows) >= total:
                break
    arr = np.array(rows[:total], dtype=np.int64)
    if shuffle:
        arr = arr[rng.permutation(len(arr))]
    return arr[:, 0].astype(np.intp), arr[:, 1].astype(np.intp), arr[:, 2], arr[:, 3]


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", type=int, default=1_000_000)
    ap.add_argument("--python-sample", type=int, default=5_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shuffle", action="store_true",
                    help="score the candidates in random order (defeats the per-group replica cache)")
    ap.add_argument("--by-kind", action="store_true",
                    help="also time dense/MoE training and inference candidates separately")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    chips = list(chip_catalog().values())
    jobs = [parse_job(random_job(rng, i)) for i in range(5000)]
    jt, ct = job_table(jobs), chip_table(chips)
    cand = solver_candidates(rng, jobs, chips, args.candidates, shuffle=args.shuffle)
    n = cand[0].size
    sample = rng.choice(n, size=min(args.python_sample, n), replace=False)
    sample.sort()
    sub = tuple(a[sample] for a in cand)

    # Warm: output buffers reused, as a caller scoring batch after batch does;
    # cold: fresh output arrays, whose first-touch page faults cost ~15% more.
    buffers = score_arrays(jt, ct, *cand, backend="core", threads=args.threads)
    t_core = timed(lambda: score_arrays(jt, ct, *cand, backend="core", threads=args.threads, out=buffers), repeat=5)
    t_cold = timed(lambda: score_arrays(jt, ct, *cand, backend="core", threads=args.threads))
    t_python = timed(lambda: score_arrays(jt, ct, *sub, backend="python"), repeat=1)

    a = score_arrays(jt, ct, *sub, backend="core")
    b = score_arrays(jt, ct, *sub, backend="python")
    agree = all(np.allclose(a[k].astype(float), b[k].astype(float), rtol=1e-9, atol=0, equal_nan=True)
                for k in col.OUTPUTS)
    result = {
        "candidates": n, "python_sample": sample.size, "threads": args.threads, "shuffled": args.shuffle,
        "cython_per_s": n / t_core, "cython_cold_per_s": n / t_cold,
        "python_per_s": sample.size / t_python,
        "feasible_share": float(np.mean(score_arrays(jt, ct, *cand)["feasible"])),
        "agree": agree, "machine": f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}".strip(),
    }
    result["cython_vs_python"] = result["cython_per_s"] / result["python_per_s"]
    if args.by_kind:
        result["by_kind"] = {}
        for name, pick in (("dense training", lambda j: j.is_train and not j.model.is_moe),
                           ("MoE training", lambda j: j.is_train and j.model.is_moe),
                           ("dense inference", lambda j: not j.is_train and not j.model.is_moe),
                           ("MoE inference", lambda j: not j.is_train and j.model.is_moe)):
            mask = np.array([pick(j) for j in jobs])[cand[0]]
            part = tuple(a[mask] for a in cand)
            t = timed(lambda: score_arrays(jt, ct, *part, backend="core", threads=args.threads))
            result["by_kind"][name] = {"share": float(mask.mean()), "cython_per_s": part[0].size / t}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{n:,} candidates ({result['feasible_share']:.0%} feasible), {args.threads} thread(s)")
    print(f"  cython  {result['cython_per_s']:>14,.0f} candidates/s   "
          f"({result['cython_cold_per_s']:,.0f}/s with fresh output arrays)")
    print(f"  python  {result['python_per_s']:>14,.0f} candidates/s   cython is {result['cython_vs_python']:.0f}x (target >= 200x; "
          f"{sample.size:,}-candidate sample)")
    print(f"  target cython >= 10,000,000/s on one core: {'met' if result['cython_per_s'] >= 1e7 else 'MISSED'}")
    print(f"  core and reference agree on the sample: {agree}")
    for name, r in result.get("by_kind", {}).items():
        print(f"  {name:16} {r['share']:4.0%} of candidates  {r['cython_per_s']:>14,.0f} candidates/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
