"""`trnsched simulate`: a small replay whose figures are worked out by hand, the
openb trace mapping, capacity over time under every policy, the command line."""
import json
import subprocess
import sys

import pytest

from checker import peak
from conftest import ROOT
from trnsched.inputs.catalog import chip_catalog, default_pue
from trnsched.inputs.errors import InputError
from trnsched.inputs.fleet import parse_fleet
from trnsched.inputs.jobs import parse_jobs
from trnsched.replay import simulate
from trnsched.replay.traces import OPENB, load_trace

ONE_RACK = {"racks": [{"id": "r0", "chips": {"h100": 8}}]}


def service(name, chips, hours, arrival, **kw):
    return {"id": name, "kind": "infer", "model": "llama3-8b", "chips": chips, "prompt_tokens": 128,
            "output_tokens": 64, "rate_rps": 0, "duration_h": hours, "arrival_h": arrival, **kw}


# A holds half the rack 0-2 h; B needs all of it; C needs half and arrives behind B.
HAND = [service("A", 4, 2.0, 0.0), service("B", 8, 1.0, 0.25), service("C", 4, 1.0, 0.5)]


def replay(jobs, fleet=ONE_RACK, **kw):
    kw.setdefault("batch_s", 0.0)
    kw.setdefault("time_limit", 0.5)
    return simulate(parse_jobs(jobs), parse_fleet(fleet), **kw)


def runs_of(result):
    """job -> (start_h, end_h), rounded so that replays compare exactly."""
    return {r.job.id: (round(r.start_h, 6), round(r.end_h, 6)) for r in result.runs}


def test_fifo_blocks_behind_the_head_of_the_queue():
    result = replay(HAND, policy="fifo")
    # B waits for A (2 h); C waits behind B though it would fit beside A.
    assert runs_of(result) == {"A": (0.0, 2.0), "B": (2.0, 3.0), "C": (3.0, 4.0)}
    f = result.figures()
    assert f["completion_h"]["mean"] == pytest.approx((2.0 + 2.75 + 3.5) / 3)
    assert f["wait_h"]["mean"] == pytest.approx((0.0 + 1.75 + 2.5) / 3)
    assert f["wait_h"]["max"] == pytest.approx(2.5)
    assert f["makespan_h"] == pytest.approx(4.0)
    # 4*2 + 8*1 + 4*1 = 20 chip-hours busy of 8 chips * 4 h.
    assert f["chip_hours"]["h100"] == pytest.approx(20.0)
    assert f["utilisation"]["h100"] == pytest.approx(20.0 / 32.0)
    chip = chip_catalog()["h100"]           # idle chips draw their idle power and their host share
    assert f["energy_kwh"]["idle"] == pytest.approx((32.0 - 20.0) * (chip.idle_w + chip.host_w) / 1000.0
                                                    * default_pue())


@pytest.mark.parametrize("policy", ["greedy", "cpsat"])
def test_backfilling_policies_start_c_beside_a(policy):
    result = replay(HAND, policy=policy)
    assert runs_of(result) == {"A": (0.0, 2.0), "C": (0.5, 1.5), "B": (2.0, 3.0)}
    f = result.figures()
    assert f["completion_h"]["mean"] == pytest.approx((2.0 + 1.0 + 2.75) / 3)
    assert f["wait_h"]["mean"] == pytest.approx(1.75 / 3)
    assert f["makespan_h"] == pytest.approx(3.0)
    assert f["utilisation"]["h100"] == pytest.approx(20.0 / 24.0)
    # Job energy is each run's predicted energy; the same runs on the same chips
    # under fifo, so only idle energy differs.
    fifo = replay(HAND, policy="fifo").figures()
    assert f["energy_kwh"]["jobs"] == pytest.approx(fifo["energy_kwh"]["jobs"])
    assert f["energy_kwh"]["idle"] < fifo["energy_kwh"]["idle"]


def test_utilisation_series_adds_up_to_busy_chip_hours():
    result = replay(HAND, policy="greedy", buckets=6)
    f = result.figures()
    series = f["utilisation_series"]
    assert series["bucket_h"] == pytest.approx(0.5)
    # Per half hour: A alone, A+C, A+C, A, B, B.
    assert series["by_chip_type"]["h100"] == pytest.approx([0.5, 1.0, 1.0, 0.5, 1.0, 1.0])


def test_batched_decisions_wait_for_the_window():
    result = replay([service("A", 4, 1.0, 0.0), service("B", 4, 1.0, 0.1)], policy="greedy", batch_s=720.0)
    # The first event opens a 0.2 h window; both jobs are decided at its end.
    assert runs_of(result) == {"A": (0.2, 1.2), "B": (0.2, 1.2)}
    assert result.decisions == 1


def test_cpsat_places_more_priority_than_greedy_when_it_counts():
    # Greedy takes the first priority-2 job (6 chips), and then nothing else fits
    # beside it: priority 2 running.  CP-SAT starts the other two (4 + 4 chips):
    # priority 3.
    jobs = [service("big", 6, 1.0, 0.0, priority=2), service("mid", 4, 1.0, 0.0, priority=2),
            service("small", 4, 1.0, 0.0, priority=1)]
    assert runs_of(replay(jobs, policy="greedy")) == {"big": (0.0, 1.0), "mid": (1.0, 2.0), "small": (1.0, 2.0)}
    assert runs_of(replay(jobs, policy="cpsat")) == {"mid": (0.0, 1.0), "small": (0.0, 1.0), "big": (1.0, 2.0)}


@pytest.mark.parametrize("policy", ["fifo", "greedy", "cpsat"])
def test_capacity_and_power_hold_at_every_instant(policy):
    jobs = [service(f"s{i}", (1, 2, 4, 8)[i % 4], 0.5 + (i % 5) * 0.7, 0.3 * i, priority=1 + i % 3)
            for i in range(30)]
    fleet = {"racks": [{"id": "a", "chips": {"h100": 8}, "power_cap_kw": 6.0},
                       {"id": "b", "chips": {"h200": 8}, "used": {"h200": 2}},
                       {"id": "c", "chips": {"trn2": 16}}]}
    result = replay(jobs, fleet, policy=policy)
    assert len(result.runs) == 30
    racks = parse_fleet(fleet).racks
    spans: dict[int, list] = {}
    for r in result.runs:
        assert r.start_h >= r.job.arrival_h - 1e-9
        assert r.end_h == pytest.approx(r.start_h + r.candidate.duration_h)
        assert sum(r.racks.values()) == r.candidate.chips
        for k, n in r.racks.items():
            spans.setdefault(k, []).append((r.start_h, r.end_h, n))
    for k, sp in spans.items():
        rack = racks[k]
        (t, count), = rack.chips.items()
        assert peak(sp) <= count - rack.used.get(t, 0)
    chip = chip_catalog()["h100"]
    watts = [(r.start_h, r.end_h, (r.candidate.values["power_kw"] / r.candidate.chips / default_pue() * 1000
                                    - chip.idle_w - chip.host_w) * n)
             for r in result.runs for k, n in r.racks.items() if k == 0]
    assert peak(watts) + 8 * (chip.idle_w + chip.host_w) <= 6000.0 + 8 + 1e-6


def test_replay_is_deterministic():
    jobs = [service(f"s{i}", (1, 2, 4)[i % 3], 1.0 + i % 4, 0.2 * i) for i in range(20)]
    a, b = replay(jobs), replay(jobs)
    assert runs_of(a) == runs_of(b)


# --- the openb mapping ------------------------------------------------------------

OPENB_ROWS = """name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time
p-cpu,4000,1024,0,0,,LS,Running,0,100,0
p-pending,4000,1024,1,1000,,BE,Pending,10,9000,
p-serve,4000,1024,1,460,,LS,Running,3600,10800,3660
p-train,4000,1024,8,1000,,BE,Succeeded,7200,14400,7200
p-burst,4000,1024,2,1000,V100M16|V100M32,Burstable,Succeeded,0,1800,0
p-guar,4000,1024,1,1000,,Guaranteed,Running,0,36000,0
"""


def write_trace(tmp_path, text=OPENB_ROWS):
    path = tmp_path / "pods.csv"
    path.write_text(text)
    return str(path)


def test_openb_pods_map_to_jobs_as_documented(tmp_path):
    trace = load_trace(write_trace(tmp_path))
    assert trace.skipped == {"CPU-only pods": 1, "pods never scheduled": 1}
    jobs = {j.id: j for j in trace.jobs}
    assert sorted(jobs) == ["p-burst", "p-guar", "p-serve", "p-train"]
    serve = jobs["p-serve"]
    assert (serve.kind, serve.priority, serve.chips_min, serve.chips_max) == ("infer", 3, 1, 1)
    assert serve.arrival_h == pytest.approx(1.0)
    assert serve.duration_h == pytest.approx((10800 - 3660) / 3600)     # the run, not the trace's queueing
    assert serve.rate_rps == pytest.approx(0.46)                        # a 46% share of one GPU
    assert jobs["p-guar"].priority == 4 and jobs["p-guar"].kind == "infer"
    train = jobs["p-train"]
    assert (train.kind, train.priority, train.chips_min) == ("train", 1, 8)
    assert jobs["p-burst"].priority == 2 and jobs["p-burst"].stack == "cuda"
    assert jobs["p-train"].stack == "any"
    scaled = {j.id: j for j in load_trace(write_trace(tmp_path), chips_per_gpu=4).jobs}
    assert scaled["p-train"].chips_min == 32 and scaled["p-serve"].chips_min == 4


def test_openb_training_runs_as_long_as_in_the_trace_on_the_reference_chip(tmp_path):
    trace = load_trace(write_trace(tmp_path))
    fleet = parse_fleet({"racks": [{"id": "ref", "chips": {OPENB["reference_chip"]: 8}}]})
    result = simulate(trace.jobs, fleet, policy="greedy", batch_s=0.0)
    runs = {r.job.id: r for r in result.runs}
    assert runs["p-train"].candidate.duration_h == pytest.approx(2.0, rel=1e-6)
    assert runs["p-burst"].candidate.duration_h == pytest.approx(0.5, rel=1e-6)


def test_openb_bad_rows_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="qos"):
        load_trace(write_trace(tmp_path, OPENB_ROWS.replace("Guaranteed", "Platinum")))
    with pytest.raises(InputError, match="not an openb pod list"):
        load_trace(write_trace(tmp_path, "a,b\n1,2\n"))


def test_cli_simulate_json_and_bad_input(tmp_path):
    trace = write_trace(tmp_path)
    fleet = tmp_path / "fleet.json"
    fleet.write_text(json.dumps({"racks": [{"id": "r", "chips": {"h100": 8}}, {"id": "t", "chips": {"trn2": 16}}]}))
    out = tmp_path / "runs.json"
    run = subprocess.run([sys.executable, "-m", "trnsched", "simulate", trace, "--fleet", str(fleet), "--json",
                          "-o", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert figures["jobs_run"] == 4 and set(figures["completion_h"]) == {"mean", "p50", "p99", "max"}
    assert len(json.loads(out.read_text())["runs"]) == 4
    text = subprocess.run([sys.executable, "-m", "trnsched", "simulate", trace, "--fleet", str(fleet),
                           "--policy", "fifo"], capture_output=True, text=True, cwd=ROOT)
    assert text.returncode == 0 and "queueing" in text.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text(OPENB_ROWS.replace("7200,14400,7200", "7200,soon,7200"))
    run = subprocess.run([sys.executable, "-m", "trnsched", "simulate", str(bad), "-o", str(tmp_path / "x.json")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and "p-train" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "x.json").exists()


def test_cli_simulate_replays_a_jobs_file(tmp_path):
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({"jobs": HAND}))
    fleet = tmp_path / "fleet.json"
    fleet.write_text(json.dumps(ONE_RACK))
    run = subprocess.run([sys.executable, "-m", "trnsched", "simulate", str(trace), "--fleet", str(fleet),
                          "--policy", "fifo", "--batch-s", "0", "--json"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert figures["makespan_h"] == pytest.approx(4.0) and figures["wait_h"]["max"] == pytest.approx(2.5)
    bad = subprocess.run([sys.executable, "-m", "trnsched", "simulate", str(trace), "--chips-per-gpu", "2"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "chips-per-gpu" in bad.stderr


@pytest.mark.parametrize("policy", ["fifo", "greedy", "cpsat"])
def test_replay_keeps_deadlines_hard(policy):
    # A holds the rack 0-2 h.  B (deadline 2.5 h, 1 h long) cannot finish in time
    # once A is running, so it is dropped, not run late; C (deadline 3.5 h) runs at 2 h.
    jobs = [service("A", 8, 2.0, 0.0, priority=3), service("B", 8, 1.0, 0.1, deadline_h=2.5),
            service("C", 8, 1.0, 0.2, deadline_h=3.5)]
    result = replay(jobs, policy=policy)
    assert runs_of(result) == {"A": (0.0, 2.0), "C": (2.0, 3.0)}
    assert [j.id for j in result.expired] == ["B"]
    f = result.figures()
    assert f["jobs_missed_deadline"] == 1 and f["jobs"] == 3
    assert "deadline" in " ".join(f["notes"])
