"""Reading inputs at scale: `python bench/bench_inputs.py --jobs 100000`.

Times, on a generated UltraCluster workload, the three steps of reading a
jobs file: JSON decoding, the schema's validation (inputs/schema.py: types,
ranges, nulls; pydantic's compiled validator), and building the typed Job
objects (the cross-field checks included).  Best of --repeat runs each, as
machines are noisy.  The fleet file's steps likewise.  Recorded in RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

from trnsched.inputs.fleet import parse_fleet
from trnsched.inputs.generate import generate_workload
from trnsched.inputs.jobs import parse_jobs
from trnsched.inputs.validate import validate_fleet, validate_jobs


def best(repeat: int, step) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--racks", type=int, default=13_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    jobs, fleet = generate_workload(args.jobs, args.racks, seed=0, ultracluster=True)
    jobs_text, fleet_text = json.dumps(jobs), json.dumps(fleet)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          f"{args.jobs:,} jobs ({len(jobs_text) / 1e6:.1f} MB), {args.racks:,} racks; best of {args.repeat}")
    rows = [
        ("jobs: JSON decode", lambda: json.loads(jobs_text)),
        ("jobs: schema validation", lambda: validate_jobs(jobs, file="jobs.json")),
        ("jobs: validation + Job objects", lambda: parse_jobs(jobs, file="jobs.json")),
        ("fleet: JSON decode", lambda: json.loads(fleet_text)),
        ("fleet: schema validation", lambda: validate_fleet(fleet, file="fleet.json")),
        ("fleet: validation + Fleet", lambda: parse_fleet(fleet, file="fleet.json")),
    ]
    for name, step in rows:
        print(f"  {name:32} {best(args.repeat, step):7.3f} s")


if __name__ == "__main__":
    main()
