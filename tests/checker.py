"""An independent check of a placement result against DESIGN.md's invariants.

Uses only the input files' dicts, the result dict and the chip catalog: no
solver, no candidate generation.
"""
from __future__ import annotations

from trnsched.inputs.catalog import chip_catalog

TOL = 1e-6


def check(jobs_data, fleet_data, result: dict) -> None:
    jobs = jobs_data["jobs"] if isinstance(jobs_data, dict) else jobs_data
    chips = chip_catalog(fleet_data.get("chip_types"))
    pue = fleet_data.get("pue", 1.2)
    racks = {r["id"]: r for r in _domains(fleet_data["racks"])}
    by_id = {j["id"]: j for j in jobs}

    placed = [p["job"] for p in result["placements"]]
    unplaced = [u["job"] for u in result["unplaced"]]
    assert sorted(placed + unplaced) == sorted(by_id), "every job exactly once"
    assert len(set(placed)) == len(placed)
    for u in result["unplaced"]:
        assert u["reason"] and "\n" not in u["reason"]

    horizon = result["totals"].get("horizon_h")
    # (rack, chip type) -> [(start, end, chips)]; rack -> [(start, end, watts)]
    use: dict[tuple[str, str], list] = {}
    added_w: dict[str, list] = {}
    for p in result["placements"]:
        job = by_id[p["job"]]
        assert sum(a["chips"] for a in p["allocations"]) == p["chips"], "allocations sum to chips"
        # What takes chips: the placement, or each pool of a disaggregated one.
        units = p.get("pools") or [p]
        if "pools" in p:
            assert job["kind"] == "infer" and job.get("disaggregation", "allow") != "never", "may split"
            assert [u["role"] for u in units] == ["prefill", "decode"], "a prefill and a decode pool"
            assert sum(u["chips"] for u in units) == p["chips"], "pools sum to chips"
            merged: dict[str, int] = {}
            for u in units:
                for a in u["allocations"]:
                    merged[a["rack"]] = merged.get(a["rack"], 0) + a["chips"]
            assert merged == {a["rack"]: a["chips"] for a in p["allocations"]}, "pools make the allocations"
            for name in ("power_kw", "energy_kwh", "cost_usd"):
                total = sum(u["metrics"][name] for u in units)
                assert abs(total - p["metrics"][name]) <= 1e-6 * max(1.0, total), f"pools' {name} add up"
            if p["link"] == "scale_up":
                assert len({a["rack"] for u in units for a in u["allocations"]}) == 1, "fused pools share a rack"
        elif job.get("disaggregation") == "require" and job["kind"] == "infer":
            raise AssertionError("disaggregation required")
        for u in units:
            t = u["chip_type"]
            assert sum(a["chips"] for a in u["allocations"]) == u["chips"], "pool allocations sum to its chips"
            if job.get("chip_types"):
                assert t in job["chip_types"], "allow-list"
            if job.get("stack", "any") != "any":
                assert chips[t].stack == job["stack"], "stack"
        want = job.get("chips")             # null: any number
        if want is not None:
            lo, hi = (want, want) if isinstance(want, int) else (want.get("min", 1), want.get("max") or 10**9)
            assert lo <= p["chips"] <= hi, "chip count within the job's range"
        m = p["metrics"]
        if job["kind"] == "infer":
            slo = job.get("slo") or {}          # null: no targets
            if slo.get("ttft_ms") is not None:
                assert m["ttft_ms"] <= slo["ttft_ms"] * (1 + TOL), "TTFT SLO"
            if slo.get("tpot_ms") is not None:
                assert m["tpot_ms"] <= slo["tpot_ms"] * (1 + TOL), "TPOT SLO"
            if job.get("rate_rps"):
                need = job["rate_rps"] * job["output_tokens"]
                assert m["output_tokens_per_s"] >= need * (1 - TOL), "rate"
        if job.get("deadline_h") is not None:
            assert p["end_h"] <= job["deadline_h"] + TOL, "deadline"
        assert p["start_h"] >= job.get("arrival_h", 0.0) - TOL
        # Each of the three is rounded to 6 decimals in the JSON.
        assert abs(p["end_h"] - p["start_h"] - p["metrics"]["duration_h"]) <= 2e-6 + TOL * p["end_h"], \
            "end = start + duration"
        if horizon is not None:
            assert p["start_h"] <= horizon + TOL, "starts within the horizon"
        # Without a horizon everything placed runs now, so every placement overlaps.
        span = (p["start_h"], p["end_h"]) if horizon is not None else (0.0, 1.0)
        assert len({racks[a["rack"]].get("pod", "default") for a in p["allocations"]}) == 1, "one pod"
        for u in units:
            t = u["chip_type"]
            per_chip_w = u["metrics"]["power_kw"] / u["chips"] / pue * 1000.0 - chips[t].idle_w
            for a in u["allocations"]:
                rack = racks[a["rack"]]
                assert t in rack["chips"], "chip type present in the rack"
                use.setdefault((a["rack"], t), []).append((*span, a["chips"]))
                added_w.setdefault(a["rack"], []).append((*span, per_chip_w * a["chips"]))
    for (rid, t), spans in use.items():
        rack = racks[rid]
        assert peak(spans) <= rack["chips"][t] - (rack.get("used") or {}).get(t, 0), f"free chips of {t} in {rid}"
    for rid, spans in added_w.items():
        w = peak(spans)
        rack = racks[rid]
        if rack.get("power_cap_kw") is None:
            continue
        base = sum(((rack.get("used") or {}).get(t, 0) * chips[t].tdp_w
                    + (n - (rack.get("used") or {}).get(t, 0)) * chips[t].idle_w) for t, n in rack["chips"].items())
        # Allow the solver's whole-watt rounding per chip.
        slack = sum(n for (r, _), sp in use.items() if r == rid for _, _, n in sp)
        assert base + w <= rack["power_cap_kw"] * 1000.0 + slack + TOL, f"power cap of {rid}"
    if result.get("best_bound") is not None and result.get("objective_value") is not None:
        assert result["best_bound"] <= result["objective_value"] * (1 + TOL) + TOL, "bound"
    t = result["totals"]
    if result.get("priority_bound") is not None:
        # Lexicographic bounds: no placement places more priority than the bound.
        assert t["priority_placed"] <= result["priority_bound"] <= t["priority_total"], "priority bound"
    if result.get("gap") is not None:
        assert 0.0 <= result["gap"] <= 1.0 + TOL, "gap"
    assert t["jobs_placed"] == len(placed) and t["jobs_unplaced"] == len(unplaced)


def peak(spans) -> float:
    """The most that (start, end, amount) spans add up to at any one instant."""
    return max((sum(a for s, e, a in spans if s <= p + TOL and e > p + TOL) for p, _, _ in spans), default=0)


def _domains(entries):
    """Fleet-file entries as racks: one with "domains": N is N equal racks
    <id>/0..<id>/N-1 sharing its chips, busy chips and cap (DESIGN: a rack is
    one scale-up domain)."""
    for r in entries:
        n = r.get("domains", 1)
        if n == 1:
            yield r
            continue
        for i in range(n):
            cap = r.get("power_cap_kw")
            yield {**r, "id": f"{r['id']}/{i}", "chips": {t: c // n for t, c in r["chips"].items()},
                   "used": {t: c // n for t, c in (r.get("used") or {}).items()},
                   "power_cap_kw": cap / n if cap is not None else None}
