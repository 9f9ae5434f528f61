"""What an ML-systems engineer would check in a `trnsched score` sweep, over every
built-in model, chip type and count: the worst case of each property.

    python bench/physics.py [--json]

Properties (issue 10; tests/test_physics.py checks a sample of each):
  scaling      doubling the chips changes training throughput by 0.95x-2.1x
               (same global batch; both counts feasible)
  batch-1      a lone request's auto-layout TPOT is within 1.3x of the best
               tensor-parallel-only layout's
  domains      the same chips in fewer, bigger scale-up domains never score worse
               (training step time, serving throughput; both feasible)
  decode power memory-bound decode (batch 1) draws less per chip than
               compute-bound training on the same chips
  trn3/trn2    FP8 training energy per token, Trn3 over Trn2 at the same count
               (AWS: 40% better energy efficiency, i.e. ~0.71x)
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from trnsched.inputs.catalog import builtin_models, chip_catalog
from trnsched.inputs.jobs import parse_job
from trnsched.perf.scoring import score_arrays
from trnsched.perf.tables import chip_table, job_table

CHIPS = chip_catalog()
MODELS = sorted(builtin_models())
COUNTS = [2 ** k for k in range(13)]          # 1 .. 4,096 chips
TP_ONLY = (1, 2, 4, 8, 16, 32, 64, 128)


def train_job(model: str, precision: str = "bf16", **extra) -> dict:
    return {"id": f"train-{model}-{precision}", "kind": "train", "model": model, "precision": precision,
            "tokens": 1e11, "seq_len": 4096, "batch_seqs": 1024, **extra}


def serve_job(model: str, **extra) -> dict:
    return {"id": f"serve-{model}", "kind": "infer", "model": model, "precision": "fp8",
            "prompt_tokens": 1024, "output_tokens": 256, **extra}


class Sweep:
    """Scores (job, chip type, chips, domains) tuples in one call to the core."""

    def __init__(self) -> None:
        self.jobs: list = []
        self.index: dict[str, int] = {}
        self.rows: list[tuple[int, int, int, int]] = []
        self.names = list(CHIPS)

    def add(self, job: dict, chip: str, n: int, domains: int | None = None) -> int:
        key = json.dumps(job, sort_keys=True)
        if key not in self.index:
            self.index[key] = len(self.jobs)
            self.jobs.append(parse_job(job))
        d = domains or math.ceil(n / CHIPS[chip].domain_size)
        self.rows.append((self.index[key], self.names.index(chip), n, d))
        return len(self.rows) - 1

    def run(self) -> dict[str, np.ndarray]:
        arr = np.array(self.rows, dtype=np.int64)
        return score_arrays(job_table(self.jobs), chip_table([CHIPS[c] for c in self.names]),
                            arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])


def worst(cases, key, *, largest=True):
    """The case with the largest (or smallest) key, or None."""
    cases = [c for c in cases if c is not None]
    if not cases:
        return None
    return (max if largest else min)(cases, key=key)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    sweep = Sweep()
    plan = {"scaling": [], "batch1": [], "domains": [], "power": [], "energy": []}

    for model in MODELS:
        for chip, spec in CHIPS.items():
            for precision in ("bf16", "fp8"):
                job = train_job(model, precision)
                ids = {n: sweep.add(job, chip, n) for n in COUNTS}
                plan["scaling"] += [(model, precision, chip, n, ids[n], ids[2 * n]) for n in COUNTS[:-1]]
                # Bigger domains: n chips over the fewest domains vs over twice and 4x as many.
                for n in COUNTS[2:]:
                    natural = math.ceil(n / spec.domain_size)
                    for split in (2, 4):
                        if natural * split <= n:
                            plan["domains"].append(("train", model, precision, chip, n, natural, natural * split,
                                                    ids[n], sweep.add(job, chip, n, natural * split)))
            # Batch 1: the auto layout against every tp-only layout, on one and two domains.
            for n in sorted({spec.domain_size, 2 * spec.domain_size, 8}):
                auto = sweep.add(serve_job(model, batch=1), chip, n)
                flats = [sweep.add(serve_job(model, batch=1, parallelism={"tp": tp, "pp": 1}), chip, n)
                         for tp in TP_ONLY if tp <= min(n, spec.domain_size)]
                plan["batch1"].append((model, chip, n, auto, flats))
                service = serve_job(model, offline=True)
                for split in (2, 4):
                    natural = math.ceil(n / spec.domain_size)
                    if natural * split <= n:
                        plan["domains"].append(("serve", model, "fp8", chip, n, natural, natural * split,
                                                sweep.add(service, chip, n), sweep.add(service, chip, n,
                                                                                       natural * split)))
            n = min(spec.domain_size, 16)
            plan["power"].append((model, chip, n, sweep.add(serve_job(model, batch=1), chip, n),
                                  sweep.add(train_job(model, "bf16"), chip, n)))
        for n in (64, 128, 512):
            plan["energy"].append((model, n, sweep.add(train_job(model, "fp8"), "trn2", n),
                                   sweep.add(train_job(model, "fp8"), "trn3", n)))

    out = sweep.run()
    ok = out["feasible"].astype(bool)
    tps, step, tpot = out["tokens_per_s"], out["step_time_s"], out["tpot_s"]
    power, energy = out["power_kw"], out["energy_kwh"]

    scaling = [(tps[b] / tps[a], m, p, c, n) for m, p, c, n, a, b in plan["scaling"] if ok[a] and ok[b]]
    # Above 2.1x: does the smaller count recompute activations (the doubled one frees the memory)?
    over = [(m, p, c, n, float(out["recompute"][a])) for m, p, c, n, a, b in plan["scaling"]
            if ok[a] and ok[b] and tps[b] / tps[a] > 2.1]
    batch1 = []
    for m, c, n, a, flats in plan["batch1"]:
        best = min((tpot[f] for f in flats if ok[f]), default=math.inf)
        if ok[a] and math.isfinite(best):
            batch1.append((tpot[a] / best, m, c, n))
    domains = []
    for kind, m, p, c, n, k1, k2, a, b in plan["domains"]:
        if ok[a] and ok[b]:
            # >1 means the split scores worse (slower step / fewer tokens per second).
            worse = step[b] / step[a] if kind == "train" else tps[a] / tps[b]
            domains.append((worse, kind, m, p, c, n, k1, k2))
    power_cases = [(power[a] / power[b], m, c, n) for m, c, n, a, b in plan["power"] if ok[a] and ok[b]]
    energy_cases = [(energy[b] / energy[a], m, n) for m, n, a, b in plan["energy"] if ok[a] and ok[b]]

    s_lo = worst(scaling, lambda c: c[0], largest=False)
    s_hi = worst(scaling, lambda c: c[0])
    b_hi = worst(batch1, lambda c: c[0])
    d_lo = worst(domains, lambda c: c[0], largest=False)     # the split most *better* than together
    p_hi = worst(power_cases, lambda c: c[0])
    e_lo = worst(energy_cases, lambda c: c[0], largest=False)
    e_hi = worst(energy_cases, lambda c: c[0])
    result = {
        "scaling": {"cases": len(scaling), "min": s_lo, "max": s_hi, "target": [0.95, 2.1],
                    "over_2_1": len(over), "over_2_1_recomputing": sum(1 for o in over if o[4] > 0),
                    "holds": bool(scaling) and s_lo[0] >= 0.95 and s_hi[0] <= 2.1},
        "batch1": {"cases": len(batch1), "max": b_hi, "target": 1.3, "holds": bool(batch1) and b_hi[0] <= 1.3 + 1e-9},
        "domains": {"cases": len(domains), "min": d_lo, "target": 1.0,
                    "holds": bool(domains) and d_lo[0] >= 1.0 - 1e-9},
        "decode_power": {"cases": len(power_cases), "max": p_hi, "target": 1.0,
                         "holds": bool(power_cases) and p_hi[0] < 1.0},
        "trn3_over_trn2_energy": {"cases": len(energy_cases), "min": e_lo, "max": e_hi, "announced": 1 / 1.4},
    }
    if args.json:
        print(json.dumps(result, indent=1, default=float))
        return 0
    f = lambda c: ", ".join(str(x) for x in c[1:])  # noqa: E731
    print(f"scaling      {len(scaling):5} doublings   training throughput x{s_lo[0]:.3f} ({f(s_lo)}) .. "
          f"x{s_hi[0]:.3f} ({f(s_hi)})   target 0.95-2.1: {'holds' if result['scaling']['holds'] else 'FAILS'}")
    if over:
        print(f"             {len(over)} doublings above 2.1x, {result['scaling']['over_2_1_recomputing']} of them where "
              f"the smaller count recomputes activations (the memory wall: the doubled count frees it)")
    print(f"batch-1      {len(batch1):5} cases       auto TPOT / best tp-only, worst x{b_hi[0]:.3f} ({f(b_hi)})"
          f"   target <= 1.3: {'holds' if result['batch1']['holds'] else 'FAILS'}")
    print(f"domains      {len(domains):5} splits      split / together, best case for the split x{d_lo[0]:.3f} "
          f"({f(d_lo)})   target >= 1: {'holds' if result['domains']['holds'] else 'FAILS'}")
    print(f"decode power {len(power_cases):5} cases       batch-1 serving / training power per chip, worst "
          f"x{p_hi[0]:.3f} ({f(p_hi)})   target < 1: {'holds' if result['decode_power']['holds'] else 'FAILS'}")
    print(f"trn3/trn2    {len(energy_cases):5} cases       fp8 training energy per token x{e_lo[0]:.3f} ({f(e_lo)}) .. "
          f"x{e_hi[0]:.3f} ({f(e_hi)})   announced ~x{1 / 1.4:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
