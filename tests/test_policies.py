"""Policies: one registry, one signature -- the same Problem decided now, over a
horizon, and for a replay's queue -- and the explanations built on the ledger."""
import json
import subprocess
import sys
from dataclasses import replace

import pytest

from checker import check
from conftest import ROOT, one_rack_three_jobs
from trnsched.candidates import generate
from trnsched.inputs.fleet import parse_fleet
from trnsched.inputs.jobs import parse_jobs
from trnsched.objective import Horizon, prune_and_price
from trnsched.policies import POLICIES, offered
from trnsched.problem import Choice, Problem, SolverConfig
from trnsched.result import build
from trnsched.solve import solve

TRAIN = {"kind": "train", "model": "llama2-7b", "tokens": 1e8, "seq_len": 2048, "batch_seqs": 64}
FLEET = {"racks": [{"id": "n0", "chips": {"h100": 8}, "power_cap_kw": 10.2},
                   {"id": "t0", "chips": {"trn2": 16}, "power_cap_kw": 12.0}]}
JOBS = [{"id": "a", "chips": 8, "priority": 2, **TRAIN}, {"id": "b", "chips": 8, **TRAIN},
        {"id": "c", "chips": {"min": 2, "max": 8}, **TRAIN}]


def problem_of(jobs_data, fleet_data, horizon=None):
    fleet = parse_fleet(fleet_data)
    jobs = parse_jobs(jobs_data, chip_names=fleet.chip_types)
    cset = generate(jobs, fleet)
    cset.candidates, costs = prune_and_price(cset.candidates, "energy")
    config = SolverConfig(time_limit=1.0, workers=1, deterministic=True)
    p = Problem.whole(jobs, fleet, cset.candidates, costs, config,
                      None if horizon is None else Horizon(horizon, 0.0))
    return p, cset


def test_registry_offers_each_command_its_policies():
    assert offered("solve") == ("cpsat", "greedy", "first-fit")
    assert offered("replay") == ("cpsat", "greedy", "fifo")
    assert all(POLICIES[name].name == name for name in POLICIES)


def state(p):
    ledger = p.ledger
    spans = None if p.timeline is None else [list(s) for s in p.timeline.spans]
    return [dict(f) for f in ledger.room.free], list(ledger.room.watts), dict(ledger.held), list(ledger.drawn), spans


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_policy_decides_the_same_problem_and_leaves_it_unchanged(name):
    p, cset = problem_of(JOBS, FLEET)
    before = state(p)
    choice = POLICIES[name].decide(p)
    assert isinstance(choice, Choice) and choice.placed
    assert state(p) == before
    check({"jobs": JOBS}, FLEET, build(p, cset, choice, name).to_dict())
    assert choice.objective_value == pytest.approx(p.value(choice))


@pytest.mark.parametrize("name", ["cpsat", "greedy", "first-fit"])
def test_the_same_call_schedules_over_a_horizon(name):
    p, cset = problem_of(JOBS, FLEET, horizon=48.0)
    before = state(p)
    choice = POLICIES[name].decide(p)
    assert state(p) == before
    assert all(a.start_h is not None for a in choice.placed.values())
    assert len(choice.placed) == 3          # over time everything runs, one after another
    check({"jobs": JOBS}, FLEET, build(p, cset, choice, name).to_dict())


def test_fifo_has_no_horizon_form():
    p, _ = problem_of(JOBS, FLEET, horizon=48.0)
    with pytest.raises(ValueError, match="fifo"):
        POLICIES["fifo"].decide(p)


def test_ties_go_to_the_earlier_job_in_the_problems_order():
    twins = [{"id": "x", "chips": 8, "chip_types": ["h100"], **TRAIN}, {"id": "y", "chips": 8, "chip_types": ["h100"],
                                                                        **TRAIN}]
    p, _ = problem_of(twins, FLEET)
    assert list(POLICIES["greedy"].decide(p).placed) == [0]
    reordered = p.sub([1, 0], p.candidates)
    assert list(POLICIES["greedy"].decide(reordered).placed) == [1]
    assert list(POLICIES["fifo"].decide(reordered).placed) == [1]


def test_fifo_stops_at_the_first_job_that_does_not_fit():
    jobs = [{"id": "head", "chips": 16, "chip_types": ["gb200"], **TRAIN}, {"id": "small", "chips": 2, **TRAIN}]
    fleet = {"racks": [{"id": "n0", "chips": {"gb200": 16}, "used": {"gb200": 12}}, {"id": "n1", "chips": {"h100": 8}}]}
    p, _ = problem_of(jobs, {"racks": [{"id": "n0", "chips": {"gb200": 16}}, {"id": "n1", "chips": {"h100": 8}}]})
    busy = p.sub(p.order, p.candidates, ledger=problem_of(jobs, fleet)[0].ledger)
    assert not POLICIES["fifo"].decide(busy).placed          # the head waits, and so does everyone behind it
    assert list(POLICIES["greedy"].decide(busy).placed) == [1]


def test_instant_order_is_priority_then_input_order_and_arrival_counts_over_a_horizon():
    # Placing now, arrivals play no part: the job listed first wins the one rack.
    # Over a horizon the earlier arrival goes first.
    late_first = [{"id": "late", "chips": 8, "arrival_h": 5.0, "chip_types": ["h100"], **TRAIN},
                  {"id": "early", "chips": 8, "arrival_h": 0.0, "chip_types": ["h100"], **TRAIN}]
    now, _ = problem_of(late_first, FLEET)
    assert now.job_order() == [0, 1]
    for name in ("greedy", "first-fit"):
        assert list(POLICIES[name].decide(now).placed) == [0]
    later, _ = problem_of(late_first, FLEET, horizon=48.0)
    assert later.job_order() == [1, 0]


def test_cpsat_skips_the_solver_when_greedy_is_optimal_only_where_asked():
    p, _ = problem_of([{"id": "solo", "chips": {"min": 1, "max": 8}, **TRAIN}], FLEET)
    assert POLICIES["cpsat"].decide(p).solver_calls == 1                 # solve always builds the model
    quick = p.sub(p.order, p.candidates, config=replace(p.config, greedy_first=True))
    easy = POLICIES["cpsat"].decide(quick)
    assert easy.solver_calls == 0 and easy.status == "OPTIMAL" and easy.gap == 0.0 and "optimal" in easy.notes[0]
    p, _ = problem_of(JOBS, FLEET)
    hard = POLICIES["cpsat"].decide(p.sub(p.order, p.candidates, config=replace(p.config, greedy_first=True)))
    assert hard.solver_calls == 1
    assert p.priority(hard) >= p.priority(POLICIES["greedy"].decide(p))


def test_costs_refuse_candidates_no_solve_numbered():
    p, _ = problem_of(JOBS, FLEET)
    stranger = generate(list(p.jobs), p.ledger.fleet).candidates[0]
    with pytest.raises(TypeError):
        p.costs[stranger]


def test_no_room_names_the_largest_pod_not_the_fleet():
    fleet = {"racks": [{"id": "a", "pod": "A", "chips": {"h100": 8}}, {"id": "b", "pod": "B", "chips": {"h100": 8}}]}
    result = solve({"jobs": [{"id": "twelve", "chips": 12, **TRAIN}]}, fleet, time_limit=1.0, workers=1,
                   deterministic=True).to_dict()
    (u,) = result["unplaced"]
    assert u["kind"] == "no_room"
    assert "the largest pod has 8 h100 free (16 h100 in the fleet)" in u["reason"]


def test_a_job_that_would_fit_is_explained_as_such():
    p, cset = problem_of(JOBS, FLEET)
    greedy = POLICIES["greedy"].decide(p)
    left_out = max(greedy.placed, key=lambda j: p.jobs[j].priority)
    choice = Choice({j: a for j, a in greedy.placed.items() if j != left_out})
    why = {u["job"]: u for u in build(p, cset, choice, "greedy").to_dict()["unplaced"]}[p.jobs[left_out].id]
    assert why["kind"] == "capacity" and "beside the placed jobs" in why["reason"]


def test_cli_policy_choices_come_from_the_registry():
    res = subprocess.run([sys.executable, "-m", "trnsched", "solve", str(ROOT / "examples" / "jobs.json"),
                          "--policy", "fifo"], capture_output=True, text=True)
    assert res.returncode == 2 and "'cpsat', 'greedy', 'first-fit'" in res.stderr
    res = subprocess.run([sys.executable, "-m", "trnsched", "simulate", str(ROOT / "examples" / "arrivals.json"),
                          "--policy", "fifo", "--json"], capture_output=True, text=True)
    assert res.returncode == 0 and json.loads(res.stdout)["policy"] == "fifo"


def test_densest_first_places_more_priority_on_a_full_rack_and_cpsat_starts_from_it():
    # One rack: the priority-3 job needs all of it, two priority-2 jobs half each.
    # Priority order (greedy, first-fit) places 3; priority per chip places 4.
    from trnsched.policies.first_fit import densest_first
    jobs_data, fleet_data = one_rack_three_jobs()
    fleet = parse_fleet(fleet_data)
    jobs = parse_jobs(jobs_data, chip_names=fleet.chip_types)
    cands, costs = prune_and_price(generate(jobs, fleet).candidates, "energy")
    problem = Problem.whole(jobs, fleet, cands, costs, SolverConfig(workers=1, deterministic=True))
    assert problem.priority(POLICIES["first-fit"].decide(problem)) == 3
    assert sorted(densest_first(problem).placed) == [1, 2]
    result = solve(jobs_data, fleet_data, time_limit=1.0, workers=1, deterministic=True).to_dict()
    check(jobs_data, fleet_data, result)
    assert result["totals"]["priority_placed"] == 4 and result["status"] == "OPTIMAL"
