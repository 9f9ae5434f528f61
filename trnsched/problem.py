"""One decision, its settings and its answer: `Problem`, `SolverConfig`, `Choice`.

Every policy (trnsched/policies) takes a Problem and returns a Choice, whether it
places a whole workload now, schedules it over a horizon, or decides for the
queue of a replay at one instant; sub-problems (a neighbourhood of the search,
the jobs that did not pack) are Problems too.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Sequence

from trnsched.candidates import Candidate, by_job
from trnsched.inputs.fleet import Fleet
from trnsched.inputs.jobs import Job
from trnsched.objective import Costs, Horizon
from trnsched.racks import RackLedger, Timeline


@dataclass(frozen=True)
class SolverConfig:
    """How long and how the CP-SAT policy may search (policies/cpsat/clock.py)."""
    time_limit: float = 10.0       # wall seconds for the whole command, counted from `began`;
                                   # deterministic: CP-SAT deterministic seconds for the decision
    workers: int = 2
    seed: int = 0
    trace: list | None = None      # receives (seconds since `began`, phase, objective, bound) per solution
    began: float | None = None     # perf_counter() at the start of the command; None: the decision's start
    deterministic: bool = False    # answers that depend only on inputs and settings, never on load
    backend: str = "local"         # where independent sub-problems run: "local" processes or "ray"
    ray_address: str | None = None # backend "ray": join this cluster; None: start a local Ray
    # Model only the jobs that fit now, and take greedy's answer without a model
    # when it places every one of them on its cheapest candidate (nothing can beat
    # that).  The replay sets it: most of its decisions end there.
    greedy_first: bool = False


@dataclass
class Allocation:
    candidate: Candidate
    racks: dict[int, int]          # rack index -> chips
    start_h: float | None = None   # scheduled start (horizon mode); None = at arrival


# The statuses a result may carry (DESIGN.md); anything else a solver says is an error.
STATUSES = ("OPTIMAL", "FEASIBLE", "INFEASIBLE", "UNKNOWN")


class SolverError(RuntimeError):
    """The solver failed (CP-SAT rejected a model, or answered with no
    documented status): the command says so on one line and exits 1; no result
    is written, as none would be true."""


@dataclass
class Choice:
    """A policy's answer: an allocation per placed job (by job index), and what
    the policy can say of its quality."""
    placed: dict[int, Allocation]
    status: str = "FEASIBLE"
    objective_value: float | None = None
    best_bound: float | None = None     # no placement placing at least this much priority costs less
    gap: float | None = None            # the larger of the priority and objective gaps
    priority_bound: int | None = None   # no placement places more priority
    solve_time_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    solver_calls: int = 0          # CP-SAT models built and solved to reach it
    subproblems: dict | None = None  # the search's parallel sub-problems (search.SearchStats.summary)


@dataclass
class Problem:
    """Which of `order`'s jobs go where.

    `jobs` are all the jobs of the solve (candidates name them by index);
    `order` lists the ones to decide, and ties between otherwise equal jobs go
    to the earlier in it; `candidates` are their choices, and ties between equal
    candidates go to the earlier in that list.  `ledger` is the room to decide
    on, and `timeline`, with `horizon`, the jobs already scheduled over time.
    Policies never change the problem's ledger or timeline: they work on copies.
    """
    jobs: Sequence[Job]
    candidates: list[Candidate]
    costs: Costs
    ledger: RackLedger
    order: list[int]
    config: SolverConfig = SolverConfig()
    horizon: Horizon | None = None
    timeline: Timeline | None = None

    @classmethod
    def whole(cls, jobs: Sequence[Job], fleet: Fleet, candidates: list[Candidate], costs: Costs,
              config: SolverConfig, horizon: Horizon | None = None) -> "Problem":
        """Every job on the fleet as it is (and, over a horizon, an empty timeline)."""
        return cls(jobs, candidates, costs, RackLedger(fleet), list(range(len(jobs))), config, horizon,
                   Timeline(fleet) if horizon is not None else None)

    def sub(self, order: list[int], candidates: list[Candidate], *, ledger: RackLedger | None = None,
            timeline: Timeline | None = None, config: SolverConfig | None = None) -> "Problem":
        """The same jobs, costs and horizon; fewer of them to decide, on other room."""
        return replace(self, order=order, candidates=candidates, ledger=ledger or self.ledger,
                       timeline=timeline or self.timeline, config=config or self.config)

    @cached_property
    def fleet(self) -> Fleet:
        """The fleet as the ledger leaves it (the fleet itself when nothing is held)."""
        return self.ledger.as_fleet()

    @cached_property
    def by_job(self) -> dict[int, list[Candidate]]:
        return by_job(self.candidates)

    @cached_property
    def rank(self) -> dict[int, int]:
        """Each job's position in `order`: the last tie-break between jobs."""
        return {j: k for k, j in enumerate(self.order)}

    def job_order(self, jobs: Sequence[int] | None = None) -> list[int]:
        """Jobs (default: `order`) in the order policies place them: priority first,
        then, over a horizon, arrival (it decides when a job can start), then
        position in `order` (a replay's queue is in arrival order already)."""
        if self.horizon is None:
            return sorted(self.order if jobs is None else jobs, key=lambda j: (-self.jobs[j].priority, self.rank[j]))
        return sorted(self.order if jobs is None else jobs,
                      key=lambda j: (-self.jobs[j].priority, self.jobs[j].arrival_h, self.rank[j]))

    def priority(self, choice: Choice) -> int:
        return sum(self.jobs[j].priority for j in choice.placed)

    def value(self, choice: Choice) -> float:
        """The objective of a choice: its candidates' costs, plus over a horizon the
        weighted completion times."""
        if self.horizon is None:
            return self.costs.total(a.candidate for a in choice.placed.values())
        return sum(self.horizon.value(self.jobs[j], a.candidate, self.costs[a.candidate], a.start_h)
                   for j, a in choice.placed.items())

    def better(self, a: Choice, b: Choice) -> Choice:
        """The better answer: more placed priority, then the lower objective (a on ties)."""
        return min((a, b), key=lambda c: (-self.priority(c), c.objective_value))
