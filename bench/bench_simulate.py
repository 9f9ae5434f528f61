"""Trace replay: CP-SAT against greedy and fifo on the Alibaba openb trace.

    python bench/bench_simulate.py [--json] [--trace CSV] [--time-limit S]

Replays the same trace (trnsched/replay/traces.py documents how pods become jobs)
under each policy on two fleets and prints, side by side: completion time and
queueing delay (mean, p50, p99), makespan, energy (running jobs and idle
chips), cost, mean utilisation per chip type, decisions and time spent
deciding:
- `examples/openb_fleet.json`, 48 chips, one chip per GPU: the trace's own
  scale, where queues form at its peaks;
- the built-in default fleet (2,740 chips) with 32 chips per GPU: the same
  arrivals and durations at the scale of a Trainium/GB200 fleet.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

from paths import OPENB_TRACE as TRACE, ROOT
from trnsched.inputs.fleet import default_fleet, load_fleet
from trnsched.replay import load_trace, simulate
SETUPS = [("openb fleet, 48 chips, 1 chip/GPU", str(ROOT / "examples" / "openb_fleet.json"), 1),
          ("default fleet, 2,740 chips, 32 chips/GPU", None, 32)]
POLICIES = ("fifo", "greedy", "cpsat")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=str(TRACE))
    ap.add_argument("--time-limit", type=float, default=0.5, help="CP-SAT deterministic seconds per decision")
    ap.add_argument("--batch-s", type=float, default=60.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    for label, fleet_file, scale in SETUPS:
        fleet = load_fleet(fleet_file) if fleet_file else default_fleet()
        trace = load_trace(args.trace, chips_per_gpu=scale)
        for policy in POLICIES:
            t = time.perf_counter()
            result = simulate(trace.jobs, fleet, policy=policy, batch_s=args.batch_s, time_limit=args.time_limit)
            f = result.figures()
            f.pop("utilisation_series")
            rows.append({"setup": label, "trace": trace.describe(), "seconds": time.perf_counter() - t, **f})
            if not args.json:
                print(f"  {label}: {policy} done in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    if args.json:
        print(json.dumps({"machine": platform.platform(), "python": platform.python_version(), "rows": rows},
                         indent=1))
        return
    print(rows[0]["trace"])
    head = (f"{'setup':40} {'policy':6} | {'JCT mean':>9} {'p50':>7} {'p99':>8} | {'wait mean':>9} {'p50':>6} "
            f"{'p99':>8} | {'makespan':>8} | {'job kWh':>9} {'idle kWh':>9} {'cost $':>11} | {'decide s':>8} {'total s':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        c, w, e = r["completion_h"], r["wait_h"], r["energy_kwh"]
        print(f"{r['setup']:40} {r['policy']:6} | {c['mean']:9.3f} {c['p50']:7.3f} {c['p99']:8.2f} | "
              f"{w['mean']:9.3f} {w['p50']:6.3f} {w['p99']:8.2f} | {r['makespan_h']:8.1f} | {e['jobs']:9,.0f} "
              f"{e['idle']:9,.0f} {r['cost_usd']:11,.0f} | {r['decide_s']:8.1f} {r['seconds']:7.1f}")
    print("\nmean utilisation per chip type (busy chip-hours / free chip-hours over the replay):")
    for r in rows:
        use = "  ".join(f"{t} {u:5.1%}" for t, u in r["utilisation"].items())
        print(f"{r['setup']:40} {r['policy']:6} | {use}")


if __name__ == "__main__":
    main()
