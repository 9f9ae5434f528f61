"""`solve --horizon`: capacity and power over time on hand-built cases whose
optimal schedules are known, arrivals, deadlines, the horizon, and random
instances through the independent checker."""
import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker import check
from conftest import ROOT
from test_solve import instances
from trnsched.inputs.fleet import parse_fleet
from trnsched.solve import solve


def service(i, hours, chips=8, **kw):
    """An inference job on a fixed number of chips that runs exactly `hours`."""
    return {"id": f"s{i}", "kind": "infer", "model": "llama3-8b", "chips": chips, "prompt_tokens": 128,
            "output_tokens": 64, "rate_rps": 0, "duration_h": hours, **kw}


def one_rack(chips=8, cap=None):
    rack = {"id": "r0", "chips": {"h100": chips}}
    if cap is not None:
        rack["power_cap_kw"] = cap
    return {"racks": [rack]}


def run(jobs, fleet, horizon, **kw):
    kw.setdefault("time_limit", 3.0)
    kw.setdefault("workers", 1)
    kw.setdefault("deterministic", True)
    result = solve({"jobs": jobs}, fleet, horizon_h=horizon, **kw).to_dict()
    check(jobs, fleet, result)
    return result


def starts(result):
    """job -> (start_h, end_h), rounded so that schedules compare exactly."""
    return {p["job"]: (round(p["start_h"], 6), round(p["end_h"], 6)) for p in result["placements"]}


def test_shortest_first_is_optimal_on_one_rack():
    # Two jobs that each fill the rack: equal priority, so the schedule that
    # minimises total completion time runs the short one first (1 + 6 < 5 + 6).
    jobs = [service(0, 5.0), service(1, 1.0)]
    result = run(jobs, one_rack(), horizon=24)
    assert starts(result) == {"s1": (0.0, 1.0), "s0": (1.0, 6.0)}
    assert result["totals"]["weighted_completion_h"] == pytest.approx(7.0)
    # The list scheduler takes jobs in input order: the long one first.
    greedy = run(jobs, one_rack(), horizon=24, policy="greedy")
    assert starts(greedy) == {"s0": (0.0, 5.0), "s1": (5.0, 6.0)}
    assert result["objective_value"] < greedy["objective_value"]


def test_priority_weights_completion_time():
    # The long job has priority 10: 10 * 5 + 1 * 6 < 10 * 6 + 1 * 1, so it goes first.
    jobs = [service(0, 5.0, priority=10), service(1, 1.0)]
    result = run(jobs, one_rack(), horizon=24)
    assert starts(result) == {"s0": (0.0, 5.0), "s1": (5.0, 6.0)}


def test_jobs_that_fit_together_run_together():
    jobs = [service(0, 3.0, chips=4), service(1, 2.0, chips=4), service(2, 1.0, chips=4)]
    result = run(jobs, one_rack(), horizon=24)
    runs = starts(result)
    # Two at a time on 8 chips: the shortest and one other at 0, the third when
    # the shortest ends (both such schedules complete in 7 h in all; any other
    # takes longer).
    assert runs["s2"] == pytest.approx((0.0, 1.0))
    assert sorted(s for s, _ in runs.values()) == pytest.approx([0.0, 0.0, 1.0])
    assert result["totals"]["weighted_completion_h"] == pytest.approx(7.0)


def test_arrival_is_respected_and_capacity_holds_over_time():
    jobs = [service(0, 2.0), service(1, 1.0, chips=4, arrival_h=1.0)]
    result = run(jobs, one_rack(), horizon=24)
    # s1 arrives while s0 holds the whole rack: it waits for s0 to end.
    assert starts(result) == {"s0": (0.0, 2.0), "s1": (2.0, 3.0)}


def test_power_cap_holds_over_time():
    # Chip count would take both 4-chip jobs at once; the cap takes one.
    solo = run([service(0, 1.0, chips=4)], one_rack(), horizon=24)
    fleet = parse_fleet(one_rack())
    chip = fleet.chip_types["h100"]
    added_kw = solo["placements"][0]["metrics"]["power_kw"] / fleet.pue - 4 * (chip.idle_w + chip.host_w) / 1000
    rack_kw = fleet.baseline_kw(fleet.racks[0]) + 1.5 * added_kw   # room for one job's draw, not two
    jobs = [service(0, 1.0, chips=4), service(1, 1.0, chips=4)]
    fleet = one_rack(cap=rack_kw)
    both = solve({"jobs": jobs[:1]}, fleet, horizon_h=24, time_limit=1, workers=1, deterministic=True).to_dict()
    assert both["placements"], "one job alone fits under the cap"
    result = run(jobs, fleet, horizon=24)
    (a0, a1), (b0, b1) = sorted(starts(result).values())
    assert b0 >= a1 - 1e-6, "the cap forces the jobs apart in time"
    assert solo["placements"][0]["end_h"] == pytest.approx(1.0)


def test_deadline_decides_the_order():
    # s1 must finish by 2 h, so it goes first although the other is listed first
    # and has the higher priority.
    jobs = [service(0, 1.0, priority=3), service(1, 2.0, deadline_h=2.0)]
    result = run(jobs, one_rack(), horizon=24)
    assert starts(result) == {"s1": (0.0, 2.0), "s0": (2.0, 3.0)}


def test_deadline_that_queueing_breaks_is_explained():
    jobs = [service(0, 3.0, priority=5, deadline_h=4.0), service(1, 2.0, deadline_h=2.5)]
    result = run(jobs, one_rack(), horizon=24)
    # Either order misses a deadline: s0 (priority 5) runs, and s1 cannot finish
    # by 2.5 h after it.
    assert [p["job"] for p in result["placements"]] == ["s0"]
    (u,) = result["unplaced"]
    assert u["kind"] == "deadline" and "earliest finish 5.0 h" in u["reason"]


def test_horizon_limits_starts():
    jobs = [service(0, 10.0, priority=2), service(1, 6.0), service(2, 1.0, arrival_h=30.0)]
    # Whichever of s0 and s1 runs first, the other would start after 5 h: s0 has the higher priority.
    result = run(jobs, one_rack(), horizon=5)
    assert [p["job"] for p in result["placements"]] == ["s0"]
    reasons = {u["job"]: u for u in result["unplaced"]}
    assert reasons["s1"]["kind"] == "horizon" and "at 10.0 h" in reasons["s1"]["reason"]
    assert reasons["s2"]["kind"] == "horizon" and "after the 5 h horizon" in reasons["s2"]["reason"]


def test_a_job_may_outrun_the_horizon_once_started():
    result = run([service(0, 50.0)], one_rack(), horizon=5)
    assert starts(result) == {"s0": (0.0, 50.0)}


def test_without_horizon_nothing_changes():
    jobs = [service(0, 5.0, chips=4), service(1, 1.0, chips=4, arrival_h=3.0)]
    result = solve({"jobs": jobs}, one_rack(), time_limit=1, workers=1, deterministic=True).to_dict()
    assert "horizon_h" not in result["totals"]
    assert starts(result) == {"s0": (0.0, 5.0), "s1": (3.0, 4.0)}


@pytest.mark.parametrize("policy", ["cpsat", "greedy", "first-fit"])
def test_every_policy_keeps_capacity_over_time(policy):
    jobs = [service(i, 1.0 + i % 3, chips=(2, 4, 8)[i % 3], arrival_h=0.5 * i, priority=1 + i % 2)
            for i in range(8)]
    fleet = {"racks": [{"id": "r0", "chips": {"h100": 8}}, {"id": "r1", "chips": {"h100": 8}, "used": {"h100": 4}}]}
    result = run(jobs, fleet, horizon=48, policy=policy)
    assert result["totals"]["jobs_placed"] == 8


def test_cpsat_no_worse_than_the_list_schedules():
    jobs = [service(i, (3.0, 1.0, 2.0, 0.5, 4.0)[i], chips=(8, 4, 4, 2, 6)[i], priority=(1, 2, 1, 3, 1)[i])
            for i in range(5)]
    fleet = {"racks": [{"id": "r0", "chips": {"h100": 8}}, {"id": "r1", "chips": {"h200": 8}}]}
    best = run(jobs, fleet, horizon=24)
    for policy in ("greedy", "first-fit"):
        other = run(jobs, fleet, horizon=24, policy=policy)
        assert best["totals"]["priority_placed"] >= other["totals"]["priority_placed"]
        assert best["objective_value"] <= other["objective_value"] + 1e-6


def test_horizon_schedule_is_deterministic():
    jobs = [service(i, 1.0 + i, chips=4, arrival_h=0.25 * i) for i in range(6)]
    a = run(jobs, one_rack(), horizon=24)
    b = run(jobs, one_rack(), horizon=24)
    assert a["placements"] == b["placements"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances(), horizon=st.sampled_from([2.0, 24.0, 200.0]), data=st.data())
def test_random_schedules_keep_every_invariant(inst, horizon, data):
    jobs, fleet = inst[0]["jobs"], inst[1]
    for job in jobs:
        job["arrival_h"] = data.draw(st.sampled_from([0.0, 0.5, 3.0, 30.0]))
        if job.get("deadline_h") is not None:
            job["deadline_h"] += job["arrival_h"]
    policy = data.draw(st.sampled_from(["cpsat", "greedy", "first-fit"]))
    run(jobs, fleet, horizon=horizon, policy=policy, time_limit=1.0)


def test_cli_horizon_prints_starts_and_writes_json(tmp_path):
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps({"jobs": [service(0, 5.0), service(1, 1.0)]}))
    fleet = tmp_path / "fleet.json"
    fleet.write_text(json.dumps(one_rack()))
    out = tmp_path / "out.json"
    run_cli = subprocess.run([sys.executable, "-m", "trnsched", "solve", str(jobs), "--fleet", str(fleet),
                              "--horizon", "24", "--time-limit", "1", "-o", str(out)],
                             capture_output=True, text=True, cwd=ROOT)
    assert run_cli.returncode == 0, run_cli.stderr
    assert "horizon 24 h" in run_cli.stdout and "start" in run_cli.stdout
    assert json.loads(out.read_text())["totals"]["horizon_h"] == 24
    bad = subprocess.run([sys.executable, "-m", "trnsched", "solve", str(jobs), "--horizon", "-3"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_checker_catches_overlap_in_time():
    jobs = [service(0, 5.0), service(1, 1.0)]
    result = run(jobs, one_rack(), horizon=24)
    late = next(p for p in result["placements"] if p["start_h"] > 0)
    late["start_h"] -= 0.5
    late["end_h"] -= 0.5
    with pytest.raises(AssertionError, match="free chips"):
        check(jobs, one_rack(), result)
