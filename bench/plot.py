"""Plots for bench/RESULTS.md (needs the optional extra: pip install -e '.[plots]').

    python bench/plot.py [--out bench/plots] [--time-limit S]

- solver_progress.png: CP-SAT's objective over time on a generated 1,000-job
  instance (energy), against greedy's and first-fit's answers;
- openb_utilisation.png: busy share of each chip type over the openb trace's
  busy last 300 hours, per policy, on the 48-chip replay fleet;
- openb_waiting.png: the distribution of queueing delay per policy, same replay.
"""
from __future__ import annotations

import argparse
from pathlib import Path

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:                      # an optional extra: say how to get it
    raise SystemExit("bench/plot.py needs matplotlib: pip install -e '.[plots]'") from None
import numpy as np

from trnsched.inputs.fleet import load_fleet, parse_fleet
from trnsched.inputs.generate import generate_workload
from trnsched.inputs.jobs import parse_jobs
from trnsched.replay import load_trace, simulate
from trnsched.solve import solve

from bench_simulate import POLICIES                 # the replay's policies, named once
from paths import OPENB_TRACE as TRACE, ROOT


def solver_progress(out: Path, time_limit: float) -> None:
    jobs_data, fleet_data = generate_workload(1000, 375, 0)
    fleet = parse_fleet(fleet_data)
    jobs = parse_jobs(jobs_data, chip_names=fleet.chip_types)
    trace: list = []
    best = solve(jobs, fleet, objective="energy", time_limit=time_limit, trace=trace)
    baselines = {p: solve(jobs, fleet, objective="energy", policy=p) for p in ("greedy", "first-fit")}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for ax, phase, label, value in ((top, 1, "placed priority", lambda r: r.totals["priority_placed"]),
                                    (bottom, 2, "energy of placed jobs, kWh", lambda r: r.objective_value)):
        points = [(t, v) for t, ph, v, _ in trace if ph == phase]
        if points:
            xs, ys = zip(*points)
            ax.step(list(xs) + [best.solve_time_s], list(ys) + [ys[-1]], where="post", marker=".",
                    label="CP-SAT solutions")
        ax.axhline(value(best), color="black", linewidth=0.8, label="CP-SAT answer (after the search)")
        for (policy, r), style in zip(baselines.items(), ("--", ":")):
            ax.axhline(value(r), linestyle=style, color="grey", label=policy)
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    top.set_title("1,000 jobs on 16,596 chips: CP-SAT's priority phase, then the search")
    bottom.set_xlabel("seconds since solve began")
    fig.tight_layout()
    fig.savefig(out / "solver_progress.png", dpi=110)


def openb(out: Path) -> None:
    fleet = load_fleet(str(ROOT / "examples" / "openb_fleet.json"))
    trace = load_trace(str(TRACE))
    results = {p: simulate(trace.jobs, fleet, policy=p, buckets=2000) for p in POLICIES}
    types = list(fleet.totals())
    fig, axes = plt.subplots(len(POLICIES), 1, figsize=(8, 7), sharex=True, sharey=True)
    # One window for all: the 300 busy hours before the backfilling policies finish.
    until = min(max(run.end_h for run in r.runs) for r in results.values())
    for ax, (policy, r) in zip(axes, results.items()):
        f = r.figures()
        s = f["utilisation_series"]
        start, width = s["start_h"], s["bucket_h"]
        x = start + width * np.arange(len(next(iter(s["by_chip_type"].values()))))
        keep = x >= until - 300
        for t in types:
            ax.plot(x[keep], np.array(s["by_chip_type"][t])[keep], label=t, linewidth=1)
        ax.set_title(f"{policy}: mean completion {f['completion_h']['mean']:.1f} h, "
                     f"mean wait {f['wait_h']['mean']:.2f} h", fontsize=9)
        ax.set_ylabel("busy share")
    axes[0].legend(ncol=len(types), fontsize=8)
    axes[-1].set_xlabel("hours since the trace began")
    fig.tight_layout()
    fig.savefig(out / "openb_utilisation.png", dpi=110)

    fig, ax = plt.subplots(figsize=(7, 4))
    for policy, r in results.items():
        waits = np.sort([run.wait_h for run in r.runs])
        ax.plot(np.maximum(waits, 1e-3), np.arange(1, len(waits) + 1) / len(waits), label=policy)
    ax.set_xscale("log")
    ax.set_xlabel("queueing delay, hours (log)")
    ax.set_ylabel("share of jobs waiting at most this long")
    ax.set_title("openb trace on the 48-chip fleet")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "openb_waiting.png", dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "plots"))
    ap.add_argument("--time-limit", type=float, default=20.0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    openb(out)
    solver_progress(out, args.time_limit)
    print(f"wrote {out}/solver_progress.png, openb_utilisation.png, openb_waiting.png")


if __name__ == "__main__":
    main()
