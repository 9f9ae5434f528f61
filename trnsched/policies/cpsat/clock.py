"""How long a CP-SAT decision may search, in one of two currencies (DESIGN.md,
"Time, interrupts and exit codes").

Wall clock (the default): `time_limit` is seconds for the whole command,
counted from `config.began`, candidate generation and output included.  Each
search gets its share of what is left once the result's own building time is
set aside, and CP-SAT stops on the wall clock.

Deterministic (`config.deterministic`): `time_limit` is CP-SAT deterministic
seconds for the decision (about 1-3 s of wall time each on a 2-core machine),
counted as the searches report them.  No wall clock is consulted anywhere, so
the same inputs and settings give the same answer on a busy or an idle machine.
"""
from __future__ import annotations

import math
import time

from ortools.sat.python import cp_model

from trnsched.interrupts import INTERRUPTS
from trnsched.policies.cpsat.packing import Limits
from trnsched.problem import SolverConfig

# Set aside from a wall-clock limit for building, explaining and writing the
# result after the search (measured: 0.1 s at 1,000 jobs, 1.6 s at 5,000), but
# never more than half the limit, so that a short limit still searches.
RESERVE_S = 0.3
RESERVE_PER_JOB_S = 2e-4
RESERVE_SHARE_MAX = 0.5
SHORTEST_SEARCH_S = 0.05     # CP-SAT's least useful limit, either currency


class Clock:
    def __init__(self, config: SolverConfig, *, jobs: int = 0, work_per_unit: float = 1.0) -> None:
        self.config = config
        self.deterministic = config.deterministic
        now = time.perf_counter()
        self.work = config.time_limit * work_per_unit
        self.deadline = math.inf
        if not self.deterministic:
            began = now if config.began is None else config.began
            reserve = min(RESERVE_S + RESERVE_PER_JOB_S * jobs, RESERVE_SHARE_MAX * config.time_limit)
            self.deadline = began + config.time_limit - reserve

    def budget(self) -> float:
        """What the decision's searches may use from now on: its deterministic
        seconds, or the wall seconds left."""
        return self.work if self.deterministic else self.left()

    def left(self) -> float:
        """Wall seconds to the deadline (infinite in deterministic mode); none
        once the command is interrupted (interrupts.py)."""
        if INTERRUPTS.requested:
            return 0.0
        return max(0.0, self.deadline - time.perf_counter())

    def spent(self) -> bool:
        """Whether the wall-clock limit leaves no room for another search, or
        the command was interrupted (in either currency)."""
        return INTERRUPTS.requested or self.left() < SHORTEST_SEARCH_S

    def rest(self, planned: float) -> float:
        """What the search that ends a decision may use: `planned` deterministic
        seconds, or all the wall time that is left."""
        return planned if self.deterministic else self.left()

    def solver(self, work: float) -> cp_model.CpSolver:
        """A CP-SAT solver limited to `work` deterministic seconds (deterministic
        mode, interleaved workers, no wall-clock limit at all) or to `work` wall
        seconds and never past the deadline."""
        s = cp_model.CpSolver()
        if self.deterministic:
            s.parameters.max_deterministic_time = max(SHORTEST_SEARCH_S, work)
        else:
            s.parameters.max_time_in_seconds = max(0.01, min(work, self.left()))
        s.parameters.num_workers = self.config.workers
        s.parameters.random_seed = self.config.seed
        # Interleaved workers make the parallel search repeatable; against the
        # wall clock the default portfolio finds more in the same seconds.
        s.parameters.interleave_search = self.deterministic
        # A signal stops every search, not just the one CP-SAT happens to be in.
        s.parameters.catch_sigint_signal = False
        INTERRUPTS.register(s)
        return s

    def limits(self, work: float, *, workers: int | None = None) -> Limits:
        """The same limit as `solver`, for a packing task that may run elsewhere
        (packing.py); `workers` CP-SAT workers (default: the configured ones)."""
        seconds = max(SHORTEST_SEARCH_S, work) if self.deterministic else max(0.01, min(work, self.left()))
        return Limits(seconds, self.deterministic, self.config.seed,
                      self.config.workers if workers is None else workers)

    def used(self, solver: cp_model.CpSolver) -> float:
        """What a finished solve cost in this clock's currency."""
        return solver.deterministic_time if self.deterministic else solver.wall_time
