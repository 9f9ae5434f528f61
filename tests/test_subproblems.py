"""Independent sub-problems: the exact packing task, the pod batches of the
search, and the backends that run them (in this process, a local process pool,
a real local Ray)."""
import json
import os
import pickle
import subprocess
import sys

import pytest

from checker import check
from conftest import ROOT, one_rack_three_jobs
from test_solve import _checked, _setup
from trnsched.inputs.errors import InputError
from trnsched.inputs.fleet import parse_fleet
from trnsched.inputs.generate import generate_workload
from trnsched.problem import SolverError
from trnsched.policies import POLICIES
from trnsched.policies.cpsat.backends import InProcess, LocalPool, RayBackend
from trnsched.policies.cpsat.clock import Clock
from trnsched.policies.cpsat.packing import Limits, read_back, solve_task, task_for
from trnsched.policies.cpsat.search import PodBatches, SearchStats, holding, improve
from trnsched.problem import Choice
from trnsched.racks import RackLedger
from trnsched.solve import solve

NEEDS_RAY = os.environ.get("TRNSCHED_REQUIRE_RAY") == "1"    # CI installs Ray and sets it


def ray_or_skip():
    try:
        import ray  # noqa: F401
    except ImportError:
        if NEEDS_RAY:
            raise
        pytest.skip("Ray is not installed (pip install '.[ray]')")


@pytest.fixture(scope="module")
def three_pods():
    """60 jobs on 18 racks in three pods: greedy leaves work for the search."""
    jobs_data, fleet_data = generate_workload(60, 18, seed=5)
    for i, rack in enumerate(fleet_data["racks"]):
        rack["pod"] = f"p{i % 3}"
    return jobs_data, fleet_data


def pod_tasks(problem, start, seconds=0.5):
    cheapest = {j: min(cs, key=lambda c: problem.costs[c]) for j, cs in problem.by_job.items()}
    hoods = PodBatches(problem, cheapest).neighbourhoods(start.placed, holding(problem, start.placed), 8)
    freed = {j for h in hoods for j in h.jobs}
    kept = RackLedger(problem.fleet)
    for j, a in start.placed.items():
        if j not in freed:
            kept.commit(a.candidate, a.racks)
    room = RackLedger(kept.as_fleet())
    out = []
    for h in hoods:
        sub = problem.sub(h.jobs, [c for j in h.jobs for c in problem.by_job[j]], ledger=room)
        current = Choice({j: start.placed[j] for j in h.jobs if j in start.placed})
        current.objective_value = sub.value(current)
        out.append((sub, current, h, task_for(sub, current, Limits(seconds, True), racks=h.racks, label=h.label)))
    return out


def test_each_pod_task_stays_on_its_pod_and_never_loses(three_pods):
    jobs_data, fleet_data = three_pods
    problem = _setup(jobs_data, fleet_data)
    start = POLICIES["greedy"].decide(problem)
    work = pod_tasks(problem, start)
    assert len(work) == 3
    jobs = [set(h.jobs) for _, _, h, _ in work]
    assert not jobs[0] & jobs[1] and not jobs[1] & jobs[2] and not jobs[0] & jobs[2], "each job in one pod's task"
    pods = [r.pod for r in problem.fleet.racks]
    for sub, current, h, task in work:
        assert {pods[r] for r in task.racks} == {h.label.removeprefix("pod ")}
        assert pickle.loads(pickle.dumps(task)) == task      # it travels to a process or a Ray task
        found = read_back(sub, task, solve_task(task))
        assert all(pods[r] == h.label.removeprefix("pod ") for a in found.placed.values() for r in a.racks)
        # The start is hinted and feasible: the answer is never worse than it.
        assert (sub.priority(found), -found.objective_value) >= (sub.priority(current),
                                                                 -current.objective_value - 1e-6)


def test_a_process_pool_gives_the_answers_solving_here_gives(three_pods):
    jobs_data, fleet_data = three_pods
    problem = _setup(jobs_data, fleet_data)
    tasks = [t for *_, t in pod_tasks(problem, POLICIES["greedy"].decide(problem))]
    pool = LocalPool(2)
    try:
        far = pool.run(tasks)
    finally:
        pool.close()
    here = InProcess().run(tasks)
    assert [a.placed for a in far] == [a.placed for a in here]
    assert pool.pool is None


def test_pod_batches_improve_the_whole_answer_within_the_checker(three_pods):
    jobs_data, fleet_data = three_pods
    problem = _setup(jobs_data, fleet_data)
    start = POLICIES["greedy"].decide(problem)
    stats = SearchStats()
    better, rounds = improve(problem, start, Clock(problem.config), work=3.0, stats=stats)
    assert stats.summary("local", 1)["batches"] >= 1 and stats.task_seconds and stats.batch_tasks
    assert (problem.priority(better), -better.objective_value) > (problem.priority(start), -start.objective_value)
    _checked(problem, better, jobs_data, fleet_data)


def _big_path(monkeypatch):
    """The search runs on big instances only; lower the threshold for a small one."""
    from trnsched.policies.cpsat.instant import Instant
    monkeypatch.setattr(Instant, "big", 10)


def test_the_same_deterministic_answer_on_every_backend(monkeypatch, three_pods):
    ray_or_skip()
    _big_path(monkeypatch)
    jobs_data, fleet_data = three_pods
    runs = {}
    for backend in ("local", "ray"):
        r = solve(jobs_data, fleet_data, time_limit=2.0, workers=2, deterministic=True, backend=backend).to_dict()
        check(jobs_data, fleet_data, r)
        assert r["stats"]["subproblems"]["backend"] == backend and r["stats"]["subproblems"]["tasks"] > 0
        runs[backend] = r
    assert runs["local"]["placements"] == runs["ray"]["placements"]
    assert runs["local"]["objective_value"] == runs["ray"]["objective_value"]


def test_ray_backend_from_the_command_line_starts_and_stops_its_own_ray(tmp_path):
    ray_or_skip()

    def raylets() -> set[str]:
        return set(subprocess.run(["pgrep", "-f", "raylet"], capture_output=True, text=True).stdout.split())

    before = raylets()
    subprocess.run([sys.executable, "-m", "trnsched", "generate", "--jobs", "300", "--racks", "100",
                    "-o", str(tmp_path)], check=True, capture_output=True)
    run = subprocess.run([sys.executable, "-m", "trnsched", "solve", str(tmp_path / "jobs.json"), "--fleet",
                          str(tmp_path / "fleet.json"), "--backend", "ray", "--deterministic", "--time-limit", "2",
                          "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    check(json.loads((tmp_path / "jobs.json").read_text()), json.loads((tmp_path / "fleet.json").read_text()),
          result)
    assert result["stats"]["subproblems"]["backend"] == "ray" and result["stats"]["subproblems"]["tasks"] > 0
    # The local Ray it started went with it.
    left = raylets() - before
    assert not left, f"raylet processes left behind: {left}"


def test_ray_backend_stops_the_ray_it_started():
    ray_or_skip()
    import ray
    backend = RayBackend(None, 1)
    assert ray.is_initialized()
    backend.close()
    assert not ray.is_initialized()


def test_missing_ray_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)     # `import ray` raises ImportError
    with pytest.raises(InputError, match="pip install 'trnsched\\[ray\\]'"):
        solve([], None, backend="ray")
    # From the command line: a `ray` that cannot be imported, exit 2, one line.
    fake = tmp_path / "fake" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no ray here')\n")
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps([{"id": "a", "kind": "infer", "model": "llama3-8b", "chips": 8, "prompt_tokens": 128,
                                 "output_tokens": 64, "rate_rps": 0, "duration_h": 1.0}]))
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "fake"))
    run = subprocess.run([sys.executable, "-m", "trnsched", "solve", str(jobs), "--backend", "ray"],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "field 'backend'" in run.stderr and "trnsched[ray]" in run.stderr


@pytest.mark.parametrize("kw, field", [({"backend": "slurm"}, "backend"),
                                       ({"ray_address": "10.0.0.1:6379"}, "ray_address")])
def test_bad_backend_settings_are_input_errors(kw, field):
    with pytest.raises(InputError, match=field):
        solve([], parse_fleet({"racks": [{"id": "a", "chips": {"h100": 8}}]}), **kw)


def test_displacing_trades_one_big_job_for_more_priority():
    # Greedy places the priority-3 job that needs the whole rack first; the two
    # priority-2 jobs that each need half of it wait.  Dropping it for them wins
    # priority, a move no round that frees one waiting job at a time can make.
    from trnsched.policies.cpsat.search import Displacing, holding
    jobs_data, fleet_data = one_rack_three_jobs()
    problem = _setup(jobs_data, fleet_data)
    start = POLICIES["greedy"].decide(problem)
    assert sorted(start.placed) == [0]
    cheapest = {j: min(cs, key=lambda c: problem.costs[c]) for j, cs in problem.by_job.items()}
    (hood,) = Displacing(problem, cheapest).neighbourhoods(start.placed, holding(problem, start.placed))
    assert sorted(hood.jobs) == [0, 1, 2]
    better, _ = improve(problem, start, Clock(problem.config), work=1.0)
    assert sorted(better.placed) == [1, 2]
    _checked(problem, better, jobs_data, fleet_data)


def test_ray_address_joins_a_running_cluster(tmp_path, monkeypatch, three_pods):
    # A Ray head started here (as a user's cluster would be), joined by address,
    # stopped by its process id; the answer is the local backend's.
    ray_or_skip()
    import socket
    import time
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _big_path(monkeypatch)
        jobs_data, fleet_data = three_pods
        local = solve(jobs_data, fleet_data, time_limit=2.0, workers=2, deterministic=True).to_dict()
        deadline = time.monotonic() + 60
        while True:
            try:
                joined = solve(jobs_data, fleet_data, time_limit=2.0, workers=2, deterministic=True, backend="ray",
                               ray_address=f"127.0.0.1:{port}").to_dict()
                break
            except InputError:           # the head is still starting
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
        check(jobs_data, fleet_data, joined)
        assert joined["stats"]["subproblems"]["backend"] == "ray" and joined["stats"]["subproblems"]["tasks"] > 0
        assert joined["placements"] == local["placements"]
        import ray
        assert not ray.is_initialized(), "a cluster it joined is left to run, its connection closed"
    finally:
        os.killpg(head.pid, 15)
        head.wait(timeout=60)


def test_a_model_cp_sat_rejects_is_an_error_not_an_empty_answer():
    # A task no caller builds (a rack with -1 free chips gives a variable an
    # empty domain): CP-SAT's MODEL_INVALID must surface (exit 1 from the
    # command), never read as "nothing better found".
    from trnsched.policies.cpsat.packing import Option, PackTask
    task = PackTask(racks=(0,), free=({"h100": -1},), headroom=(None,), pods=(0,),
                    options=(Option(0, 0, "h100", 8, 2, 0, 5, (0,)),), priority={0: 5}, start={},
                    limits=Limits(1.0, True))
    with pytest.raises(SolverError, match="rejected a packing model"):
        solve_task(task)
