"""Record the CLI's outputs on the examples and the openb trace, and compare two records.

    python bench/snapshot.py record DIR      # run every command, write DIR/<name>.json
    python bench/snapshot.py compare A B     # exit 1 and list the differences if A and B differ

Used to show that a restructuring changes no behaviour: record before, record
after, compare.  Only wall-clock fields (solve_time_s, wall_s, decide_s) are
dropped; everything else must be identical, number for number.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from paths import OPENB_TRACE as OPENB, ROOT

WALL_CLOCK = {"solve_time_s", "wall_s", "decide_s"}
OBJECTIVES = ("energy", "cost", "time", "balanced")
POLICIES = ("cpsat", "greedy", "first-fit")


def commands() -> dict[str, list[str]]:
    jobs, score = "examples/jobs.json", "examples/score.json"
    out: dict[str, list[str]] = {}
    for objective in OBJECTIVES:
        for policy in POLICIES:
            out[f"solve-{objective}-{policy}"] = ["solve", jobs, "--objective", objective, "--policy", policy]
    for policy in POLICIES:
        out[f"solve-fleet-file-{policy}"] = ["solve", jobs, "--fleet", "examples/fleet.json", "--policy", policy]
        out[f"horizon48-{policy}"] = ["solve", jobs, "--horizon", "48", "--policy", policy]
        out[f"arrivals-horizon72-{policy}"] = ["solve", "examples/arrivals.json", "--horizon", "72", "--policy", policy]
    out["score-score"] = ["score", score]
    out["score-jobs"] = ["score", jobs]
    out["score-h100-1024"] = ["score", score, "--chip-type", "h100", "--chips", "1024"]
    for policy in ("fifo", "greedy", "cpsat"):
        out[f"simulate-openb-{policy}"] = ["simulate", os.path.relpath(OPENB, ROOT),   # the same in any checkout
                                           "--fleet", "examples/openb_fleet.json", "--policy", policy]
        out[f"simulate-arrivals-{policy}"] = ["simulate", "examples/arrivals.json", "--policy", policy]
    for policy in POLICIES:
        # Instant placement of jobs that carry arrivals, in and out of input order
        # (ties between equal priorities are where orders show).
        out[f"arrivals-now-{policy}"] = ["solve", "examples/arrivals.json", "--policy", policy]
        out[f"shuffled-now-{policy}"] = ["solve", "{gen}/shuffled.json", "--fleet", "examples/fleet.json",
                                         "--policy", policy]
        out[f"shuffled-horizon-{policy}"] = ["solve", "{gen}/shuffled.json", "--fleet", "examples/fleet.json",
                                             "--horizon", "72", "--policy", policy]
    out["one-job-cpsat"] = ["solve", "{gen}/one.json"]
    gen = "{gen}"   # a generated workload, written once per record
    out["generated-cpsat"] = ["solve", f"{gen}/jobs.json", "--fleet", f"{gen}/fleet.json", "--time-limit", "5"]
    out["generated-greedy"] = ["solve", f"{gen}/jobs.json", "--fleet", f"{gen}/fleet.json", "--policy", "greedy"]
    out["generated-horizon-greedy"] = ["solve", f"{gen}/jobs.json", "--fleet", f"{gen}/fleet.json",
                                       "--horizon", "168", "--policy", "greedy"]
    out["generated-horizon-cpsat"] = ["solve", f"{gen}/jobs.json", "--fleet", f"{gen}/fleet.json",
                                      "--horizon", "168", "--time-limit", "3"]
    return out


GENERATED = ("--jobs", "300", "--racks", "110", "--seed", "1")


def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in WALL_CLOCK}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x


def record(folder: Path, only: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    gen = folder / "generated"
    subprocess.run([sys.executable, "-m", "trnsched", "generate", *GENERATED, "-o", str(gen)], cwd=ROOT,
                   check=True, capture_output=True)
    arrivals = json.loads((ROOT / "examples" / "arrivals.json").read_text())["jobs"]
    shuffled = [{**job, "priority": 1} for job in reversed(arrivals)]
    (gen / "shuffled.json").write_text(json.dumps({"jobs": shuffled}, indent=1))
    first = json.loads((ROOT / "examples" / "jobs.json").read_text())["jobs"][:1]
    (gen / "one.json").write_text(json.dumps({"jobs": first}, indent=1))
    for name, args in commands().items():
        if only and only not in name:
            continue
        args = [a.replace("{gen}", str(gen)) for a in args]
        began = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "trnsched", *args, "--json"], cwd=ROOT,
                             capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"{name}: exit {res.returncode}: {res.stderr.strip()}")
        (folder / f"{name}.json").write_text(json.dumps(strip(json.loads(res.stdout)), indent=1, sort_keys=True))
        print(f"{name:32} {time.perf_counter() - began:6.1f} s", flush=True)


def differences(a, b, where: str = ""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                yield f"{where}.{k}: only in {'B' if k not in a else 'A'}"
            else:
                yield from differences(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield f"{where}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{where}[{i}]")
    elif a != b:
        yield f"{where}: {a!r} vs {b!r}"


def compare(a: Path, b: Path) -> int:
    bad = 0
    for fb in sorted(b.glob("*.json")):
        if not (a / fb.name).exists():
            print(f"{fb.stem}: missing in {a}")
            bad += 1
    for fa in sorted(a.glob("*.json")):
        fb = b / fa.name
        if not fb.exists():
            print(f"{fa.stem}: missing in {b}")
            bad += 1
            continue
        diffs = list(differences(json.loads(fa.read_text()), json.loads(fb.read_text())))
        print(f"{fa.stem:32} {'identical' if not diffs else f'{len(diffs)} differences'}")
        for d in diffs[:10]:
            print(f"    {d}")
        bad += bool(diffs)
    return 1 if bad else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("folder", type=Path)
    r.add_argument("--only", help="only commands whose name contains this")
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = p.parse_args()
    if args.cmd == "record":
        record(args.folder, args.only)
    else:
        sys.exit(compare(args.a, args.b))


if __name__ == "__main__":
    main()
