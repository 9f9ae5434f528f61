"""Disaggregated serving: what splitting prefill and decode saves, and on which chips.

    python bench/bench_disagg.py [--json] [--time-limit S]

One serving workload -- chat, summarisation, code assistants with long prompts
and RAG, each on Llama 3 70B (fp8 and fp4) and Mixtral 8x22B (fp8), with the request
shapes, rates and SLOs in SERVICES -- placed on two fleets holding the same
chips (4 x 72 Trainium3 and 4 x 36 GB200, with their rack power caps):

- hybrid: four hybrid racks, each 72 Trainium3 + 36 GB200 on one fused
  fabric (the default fleet's c-hybrid kind);
- separate: the same chips as two Trainium3 UltraServers (144 each) and two
  GB200 NVL72 racks (72 each): a cross-type split's KV cache crosses the
  scale-out network;
- hybrid-scarce: the hybrid racks with 24 of each rack's 36 GB200 busy (48
  free): where the chip type that is best at both roles runs short.

Four configurations, for the cost and the energy objective:

- co-located: every service on one chip type, prefill and decode together
  (`disaggregation: never`);
- same-type: every service split, both pools of one chip type (`require`,
  split_types "same");
- cross-type: every service split across the two chip types (`require`,
  split_types "cross");
- trnsched: the solver free to choose among all of them (`allow`).

Per run: services placed, cost (USD over the services' 24 h), energy (kWh),
chips, and how many prefill and decode pools each chip type took.  Then, per
chip type, what a prefill pool and a decode pool of each service costs alone
(the core's sizing, no fleet): the comparative advantage that decides which type
takes which role.  Every result goes through the independent checker
(tests/checker.py) and the CP-SAT runs are deterministic.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

from paths import ROOT

sys.path.insert(0, str(ROOT / "tests"))
from checker import check  # noqa: E402  (the tests' independent checker)

from trnsched.inputs.fleet import parse_fleet
from trnsched.inputs.jobs import parse_jobs
from trnsched.perf import columns as col
from trnsched.perf.scoring import score_pool_arrays
from trnsched.perf.tables import chip_table, job_table
from trnsched.solve import solve

# (name, prompt tokens, output tokens, TTFT SLO ms, TPOT SLO ms, requests/s).  Shapes:
# chat as in Splitwise's conversation trace (~1k-2k in, a few hundred out); summarisation
# and RAG with long retrieved contexts; code completion with repository-sized prompts
# and short answers (Splitwise's coding trace: ~1.5k median in, 13 out, long tail).
SERVICES = [
    ("chat", 2048, 512, 800, 40, 30),
    ("summarise", 8192, 512, 2000, 50, 8),
    ("code", 16384, 256, 3000, 30, 6),
    ("rag", 6144, 256, 1500, 40, 15),
]
MODELS = [("llama3-70b", "fp8"), ("mixtral-8x22b", "fp8"), ("llama3-70b", "fp4")]
HOURS = 24.0
CONFIGS = [("co-located", "never", "any"), ("same-type", "require", "same"),
           ("cross-type", "require", "cross"), ("trnsched", "allow", "any")]


def workload(disaggregation: str) -> dict:
    jobs = []
    for model, precision in MODELS:
        for name, prompt, output, ttft, tpot, rate in SERVICES:
            jobs.append({"id": f"{name}-{model}-{precision}", "kind": "infer", "model": model, "precision": precision,
                         "priority": 1, "rate_rps": rate, "prompt_tokens": prompt, "output_tokens": output,
                         "slo": {"ttft_ms": ttft, "tpot_ms": tpot}, "duration_h": HOURS,
                         "disaggregation": disaggregation})
    return {"jobs": jobs}


def fleets() -> dict[str, dict]:
    hybrid = {"name": "hybrid", "racks": [{"id": f"hybrid{i}", "pod": "pod-h", "chips": {"trn3": 72, "gb200": 36},
                                           "power_cap_kw": 138.0} for i in range(4)]}
    # The same racks with two thirds of their GB200 busy (training holds them): 48 free.
    scarce = {"name": "hybrid-scarce", "racks": [{**r, "id": f"busy-{r['id']}", "used": {"gb200": 24}}
                                                  for r in hybrid["racks"]]}
    separate = {"name": "separate", "racks": (
        [{"id": f"trn3-us{i}", "pod": "pod-s", "chips": {"trn3": 144}, "power_cap_kw": 172.0} for i in range(2)]
        + [{"id": f"gb200-nvl{i}", "pod": "pod-s", "chips": {"gb200": 72}, "power_cap_kw": 132.0}
           for i in range(2)])}
    return {"hybrid": hybrid, "separate": separate, "hybrid-scarce": scarce}


def run(fleet_data: dict, config: tuple[str, str, str], objective: str, time_limit: float) -> dict:
    name, disaggregation, split_types = config
    jobs_data = workload(disaggregation)
    began = time.perf_counter()
    result = solve(jobs_data, fleet_data, objective=objective, time_limit=time_limit, deterministic=True,
                   split_types=split_types).to_dict()
    wall = time.perf_counter() - began
    check(jobs_data, fleet_data, result)
    roles: dict[str, dict[str, int]] = {}
    links: dict[str, int] = {}
    for p in result["placements"]:
        for pool in p.get("pools") or []:
            roles.setdefault(pool["chip_type"], {"prefill": 0, "decode": 0})[pool["role"]] += 1
        if p.get("pools"):
            links[p["link"]] = links.get(p["link"], 0) + 1
    t = result["totals"]
    return {"config": name, "objective": objective, "status": result["status"], "placed": t["jobs_placed"],
            "jobs": t["jobs_placed"] + t["jobs_unplaced"], "cost_usd": t["cost_usd"], "energy_kwh": t["energy_kwh"],
            "chips": t["chips_used"], "roles": roles, "links": links, "wall_s": wall,
            "placements": {p["job"]: (p["chip_type"], p["chips"], p.get("link")) for p in result["placements"]}}


def role_costs(fleet_data: dict) -> list[dict]:
    """Per service and chip type: one same-type split's prefill and decode pools
    alone, USD/h and kW (the core's sizing, no fleet)."""
    fleet = parse_fleet(fleet_data)
    types = fleet.types_present()
    jobs = parse_jobs(workload("allow"), chip_names=fleet.chip_types)
    jt, ct = job_table(jobs), chip_table([fleet.chip_types[t] for t in types], pue=fleet.pue)
    rows = np.array([(j, i, i, col.FUSED) for j in range(len(jobs)) for i in range(len(types))])
    out = score_pool_arrays(jt, ct, rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3])
    table = []
    for k, (j, i, _, _) in enumerate(rows):
        if out["reason"][k] != col.OK:
            continue
        price = ct[i, col.C_PRICE_HR]
        table.append({"job": jobs[j].id, "chip_type": types[i],
                      "prefill_usd_h": float(out["prefill_chips"][k] * price),
                      "prefill_kw": float(out["prefill_power_kw"][k]), "prefill_chips": int(out["prefill_chips"][k]),
                      "decode_usd_h": float(out["decode_chips"][k] * price),
                      "decode_kw": float(out["decode_power_kw"][k]), "decode_chips": int(out["decode_chips"][k])})
    return table


def transfers(fleet_data: dict) -> list[dict]:
    """Per service, a GB200-prefill, Trainium3-decode split: the KV cache per
    request and its transfer over the hybrid rack's fabric and over scale-out."""
    fleet = parse_fleet(fleet_data)
    types = fleet.types_present()
    jobs = parse_jobs(workload("allow"), chip_names=fleet.chip_types)
    jt, ct = job_table(jobs), chip_table([fleet.chip_types[t] for t in types], pue=fleet.pue)
    p, d = types.index("gb200"), types.index("trn3")
    rows = np.array([(j, p, d, link) for j in range(len(jobs)) for link in (col.FUSED, col.SCALE_OUT)])
    out = score_pool_arrays(jt, ct, rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3])
    table = []
    for j, job in enumerate(jobs):
        fused, scale_out = 2 * j, 2 * j + 1
        table.append({"job": job.id, "kv_mb": float(out["kv_bytes"][fused] / 1e6),
                      "fused_ms": float(out["kv_transfer_s"][fused] * 1e3),
                      "scale_out_ms": float(out["kv_transfer_s"][scale_out] * 1e3),
                      "ttft_fused_ms": float(out["ttft_s"][fused] * 1e3),
                      "ttft_scale_out_ms": float(out["ttft_s"][scale_out] * 1e3),
                      "prefill_chips": (int(out["prefill_chips"][fused]), int(out["prefill_chips"][scale_out])),
                      "slo_ms": job.slo_ttft_ms})
    return table


def chip_ratios(fleet_data: dict) -> list[dict]:
    """What decides each role: USD/h and kW per PFLOP/s of fp8 (prefill is
    compute-bound) and per TB/s of HBM (decode streams weights and KV cache)."""
    fleet = parse_fleet(fleet_data)
    out = []
    for t in fleet.types_present():
        c = fleet.chip_types[t]
        out.append({"chip_type": t, "usd_per_pflops": c.price_per_chip_hour / (c.peak_fp8_tflops / 1e3),
                    "usd_per_tbps": c.price_per_chip_hour / c.hbm_tbps,
                    "w_per_pflops": c.tdp_w / (c.peak_fp8_tflops / 1e3), "w_per_tbps": c.tdp_w / c.hbm_tbps})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--time-limit", type=float, default=20.0, help="CP-SAT deterministic seconds per run")
    args = ap.parse_args()
    began = time.perf_counter()
    runs = []
    for fleet_name, fleet_data in fleets().items():
        for objective in ("cost", "energy"):
            for config in CONFIGS:
                r = run(fleet_data, config, objective, args.time_limit)
                r["fleet"] = fleet_name
                runs.append(r)
    report = {"machine": f"{platform.node()} ({platform.processor() or platform.machine()}), "
                         f"{platform.python_version()}",
              "command": "python bench/bench_disagg.py", "runs": runs,
              "role_costs": role_costs(fleets()["hybrid"]), "chips": chip_ratios(fleets()["hybrid"]),
              "transfers": transfers(fleets()["hybrid"]),
              "wall_s": time.perf_counter() - began}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{len(SERVICES) * len(MODELS)} services x {HOURS:g} h; every result checked (tests/checker.py)")
    for fleet_name in fleets():
        for objective in ("cost", "energy"):
            rows = [r for r in runs if r["fleet"] == fleet_name and r["objective"] == objective]
            base = rows[0]
            print(f"\n{fleet_name} fleet, {objective} objective")
            print(f"  {'config':<11} {'placed':>6} {'cost $':>9} {'vs co-loc':>9} {'energy kWh':>10} {'vs co-loc':>9} "
                  f"{'chips':>5}  roles (prefill/decode pools per chip type), links")
            for r in rows:
                same = r["placed"] == base["placed"]      # compared only at the same work placed
                vs_cost = f"{r['cost_usd'] / base['cost_usd'] - 1:+.1%}" if same else "n/a"
                vs_energy = f"{r['energy_kwh'] / base['energy_kwh'] - 1:+.1%}" if same else "n/a"
                roles = ", ".join(f"{t} {n['prefill']}/{n['decode']}" for t, n in sorted(r["roles"].items()))
                links = ", ".join(f"{k} {n}" for k, n in sorted(r["links"].items()))
                print(f"  {r['config']:<11} {r['placed']:>3}/{r['jobs']:<2} {r['cost_usd']:>9,.0f} {vs_cost:>9} "
                      f"{r['energy_kwh']:>10,.0f} {vs_energy:>9} {r['chips']:>5}  {roles}  {links}")
    print("\nper service, one pool alone (USD/h, kW, chips) -- the core's sizing at the service's rate and SLOs:")
    for row in report["role_costs"]:
        print(f"  {row['job']:<28} {row['chip_type']:<6} prefill ${row['prefill_usd_h']:>6.1f}/h "
              f"{row['prefill_kw']:>5.1f} kW {row['prefill_chips']:>3}   decode ${row['decode_usd_h']:>6.1f}/h "
              f"{row['decode_kw']:>5.1f} kW {row['decode_chips']:>3}")
    print("\nKV cache per request, GB200 prefill -> Trainium3 decode: transfer and TTFT, fused fabric vs scale-out:")
    for row in report["transfers"]:
        print(f"  {row['job']:<28} {row['kv_mb']:>7,.0f} MB  {row['fused_ms']:>5.1f} ms vs {row['scale_out_ms']:>5.1f} ms;"
              f"  TTFT {row['ttft_fused_ms']:>5,.0f} vs {row['ttft_scale_out_ms']:>5,.0f} ms (SLO {row['slo_ms']:g}), "
              f"prefill chips {row['prefill_chips'][0]} vs {row['prefill_chips'][1]}")
    print("\nwhat decides the roles: price and TDP per fp8 PFLOP/s (prefill) and per TB/s of HBM (decode):")
    for c in report["chips"]:
        print(f"  {c['chip_type']:<6} ${c['usd_per_pflops']:.2f}/h and {c['w_per_pflops']:.0f} W per PFLOP/s;  "
              f"${c['usd_per_tbps']:.2f}/h and {c['w_per_tbps']:.0f} W per TB/s")
    print(f"\n{report['machine']}; {report['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
