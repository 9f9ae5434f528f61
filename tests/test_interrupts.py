"""Ctrl-C and SIGTERM on a real solve (DESIGN.md, "Time, interrupts and exit
codes"): prompt, one line, exit 130/143, nothing written and an existing -o
untouched -- or, with --on-interrupt best, the best answer so far, marked."""
import json
import signal
import subprocess
import sys
import time

import pytest

from checker import check
from conftest import ROOT, SHARED

SOLVING_BY_S = 6.0      # well inside the solve: generation takes about a second
PROMPT_S = 15.0         # the most an interrupted command may take to end


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interrupt")
    subprocess.run([sys.executable, "-m", "trnsched", "generate", "--jobs", "600", "--racks", "200", "-o",
                    str(folder)], check=True, capture_output=True)
    return folder


def interrupted(instance, signum, *extra):
    proc = subprocess.Popen([sys.executable, "-m", "trnsched", "solve", str(instance / "jobs.json"), "--fleet",
                             str(instance / "fleet.json"), "--time-limit", "120", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(SOLVING_BY_S)
    assert proc.poll() is None, "the solve ended before the signal"
    proc.send_signal(signum)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=120)
    return proc.returncode, time.monotonic() - sent, out, err


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_solve_and_writes_nothing(instance, signum, code):
    out_file = instance / f"kept-{code}.json"
    out_file.write_text("earlier result\n")
    rc, took, out, err = interrupted(instance, signum, "-o", str(out_file))
    assert rc == code and took < PROMPT_S
    assert err == f"interrupted by {signal.Signals(signum).name}: nothing written\n"
    assert out == "" and out_file.read_text() == "earlier result\n"
    assert not [p for p in instance.iterdir() if p.name.startswith(".trnsched-")], "no temporary file left"


def test_on_interrupt_best_returns_the_best_answer_marked(instance):
    out_file = instance / "best.json"
    rc, took, out, err = interrupted(instance, signal.SIGINT, "--on-interrupt", "best", "-o", str(out_file))
    assert rc == 130 and took < PROMPT_S
    result = json.loads(out_file.read_text())
    assert result["interrupted"] is True and result["status"] == "FEASIBLE" and result["placements"]
    assert result["priority_bound"] >= result["totals"]["priority_placed"]
    check(json.loads((instance / "jobs.json").read_text()), json.loads((instance / "fleet.json").read_text()),
          result)


def test_a_replay_stops_between_events_and_writes_nothing(tmp_path):
    out_file = tmp_path / "replay.json"
    proc = subprocess.Popen([sys.executable, "-m", "trnsched", "simulate",
                             str(SHARED / "traces" / "alibaba-openb-2023" / "openb_pod_list_default.csv"),
                             "--fleet", str(ROOT / "examples" / "openb_fleet.json"), "-o", str(out_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(SOLVING_BY_S)
    assert proc.poll() is None, "the replay ended before the signal"
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and time.monotonic() - sent < PROMPT_S
    assert err.rstrip("\n").splitlines()[-1].endswith("interrupted by SIGINT: nothing written")
    assert out == "" and not out_file.exists()


def test_a_signal_stops_a_ray_backed_solve_and_its_ray(instance):
    # With --backend ray the command starts a local Ray; Ctrl-C must stop the
    # solve as promptly, write nothing, and take that Ray down with it.
    from test_subproblems import ray_or_skip
    ray_or_skip()

    def raylets() -> set[str]:
        return set(subprocess.run(["pgrep", "-f", "raylet"], capture_output=True, text=True).stdout.split())

    before = raylets()
    out_file = instance / "kept-ray.json"
    out_file.write_text("earlier result\n")
    rc, took, out, err = interrupted(instance, signal.SIGINT, "--backend", "ray", "-o", str(out_file))
    assert rc == 130 and took < PROMPT_S, err
    assert err.rstrip("\n").splitlines()[-1] == "interrupted by SIGINT: nothing written"
    assert out == "" and out_file.read_text() == "earlier result\n"
    deadline = time.monotonic() + 10          # raylet exits when its driver's session ends
    while raylets() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not raylets() - before, "raylet processes left behind"
