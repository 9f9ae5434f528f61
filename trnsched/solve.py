"""`solve`: jobs + fleet -> Result.  The pipeline of DESIGN.md, and nothing else:

    validate (inputs/)  ->  candidates, scored by the core (candidates.py, perf/)
      ->  prune and cost (candidates.py, objective.py)  ->  choose (policies/)
      ->  placements and explanations (result.py, explain.py)
"""
from __future__ import annotations

import signal
import time
from contextlib import nullcontext
from typing import Any, Sequence

from trnsched.candidates import generate
from trnsched.inputs.errors import InputError
from trnsched.inputs.fleet import Fleet, check_fleet, default_fleet, parse_fleet
from trnsched.inputs.jobs import Job, check_jobs, parse_jobs
from trnsched.inputs.schema import SolveArguments
from trnsched.inputs.validate import check_arguments
from trnsched.interrupts import INTERRUPTS
from trnsched.objective import OBJECTIVES, Horizon, completion_weight, prune_and_price
from trnsched.policies import POLICIES, offered
from trnsched.policies.cpsat.backends import ray_module, session
from trnsched.problem import Problem, SolverConfig
from trnsched.result import Result, build


ON_INTERRUPT = ("stop", "best")


def solve(jobs: Sequence[Job] | Any, fleet: Fleet | Any = None, *, objective: str = "energy",
          policy: str = "cpsat", time_limit: float = 10.0, workers: int = 2, seed: int = 0,
          trace: list | None = None, horizon_h: float | None = None, time_weight: float = 1.0,
          deterministic: bool = False, began: float | None = None, backend: str = "local",
          ray_address: str | None = None, on_interrupt: str = "stop", split_types: str = "any") -> Result:
    """Place jobs on a fleet (the built-in default fleet when None).  `jobs` may be
    Job objects or the decoded jobs.json; `fleet` a Fleet or the decoded fleet.json.

    `time_limit` is wall-clock seconds for the whole call, counted from `began`
    (a time.perf_counter() reading; default: the start of this call); the best
    answer found by then is returned.  With `deterministic`, it is CP-SAT
    deterministic seconds instead, and the answer depends only on the inputs and
    settings.  `trace` (CP-SAT only) receives (seconds since `began`, phase,
    objective, bound) per solution found.  With `horizon_h`, jobs are also
    scheduled in time: each starts at or after its arrival and within the
    horizon, and the objective adds `time_weight` times the priority-weighted
    completion time (objective.Horizon).  `backend` is where the search's
    independent sub-problems run: "local" (a pool of `workers` processes) or
    "ray" (a local Ray started for the call, or the cluster at `ray_address`).
    Inside `interrupts.catching()` (the CLI), a SIGINT or SIGTERM ends every
    search at once: with `on_interrupt` "stop" the call raises Interrupted at
    the next stage, with "best" it returns the best answer so far, marked
    `interrupted`.  `split_types` limits disaggregated services to pools of one
    chip type ("same") or of two ("cross"); "any" (default) lets both compete."""
    began = time.perf_counter() if began is None else began
    check_arguments(SolveArguments, objective=objective, policy=policy, time_limit=time_limit, workers=workers,
                    seed=seed, horizon_h=horizon_h, time_weight=time_weight, deterministic=deterministic,
                    backend=backend, ray_address=ray_address, on_interrupt=on_interrupt, split_types=split_types)
    if ray_address is not None and backend != "ray":
        raise InputError(f"is for --backend ray, got {ray_address!r} with backend {backend!r}", field="ray_address")
    if backend == "ray":
        ray_module()
    if objective not in OBJECTIVES:
        raise InputError(f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}", field="objective")
    if policy not in offered("solve"):
        raise InputError(f"must be one of {', '.join(offered('solve'))}, got {policy!r}", field="policy")
    if fleet is None:
        fleet = default_fleet()
    elif isinstance(fleet, Fleet):
        check_fleet(fleet)
    else:
        fleet = parse_fleet(fleet)
    if isinstance(jobs, (list, tuple)) and jobs and all(isinstance(j, Job) for j in jobs):
        check_jobs(jobs, fleet.chip_types)
    else:
        jobs = parse_jobs(jobs, chip_names=fleet.chip_types)
    jobs = list(jobs)

    keep_best = on_interrupt == "best"
    cset = generate(jobs, fleet, split_types)
    if not keep_best:
        INTERRUPTS.check()
    cset.candidates, costs = prune_and_price(cset.candidates, objective)
    horizon = None
    if horizon_h is not None:
        horizon = Horizon(horizon_h, completion_weight(jobs, cset.candidates, costs, horizon_h, time_weight))
    config = SolverConfig(time_limit, workers, seed, trace, began, deterministic=deterministic, backend=backend,
                          ray_address=ray_address)
    problem = Problem.whole(jobs, fleet, cset.candidates, costs, config, horizon)
    with session(config) if policy == "cpsat" else nullcontext():
        choice = POLICIES[policy].decide(problem)
    if not keep_best:
        INTERRUPTS.check()
    result = build(problem, cset, choice, policy)
    if INTERRUPTS.requested:
        result.interrupted = True
        result.notes.append(f"interrupted by {signal.Signals(INTERRUPTS.signal).name}: the best answer found by then")
    return result
