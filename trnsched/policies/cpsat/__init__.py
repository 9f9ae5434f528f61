"""cpsat: the CP-SAT policy.  Most placed priority, then the least objective;
over a horizon, the time-indexed model.

Its machinery: the model (model.py), the one two-phase driver (driver.py), its
two formulations -- placing now (instant.py) and over a horizon (horizon.py) --
and the neighbourhood search for big instances (search.py).
"""
from __future__ import annotations

from trnsched.policies.cpsat.driver import on_snapshot, solve
from trnsched.policies.cpsat.horizon import Schedule
from trnsched.policies.cpsat.instant import Instant
from trnsched.policies.cpsat.model import check_integer_range
from trnsched.policies.greedy import Greedy
from trnsched.policies.sequential import first_that_fits
from trnsched.problem import Choice, Problem


class CpSat:
    name = "cpsat"
    offered = frozenset({"solve", "replay"})

    def decide(self, problem: Problem) -> Choice:
        check_integer_range(problem)
        if problem.horizon is not None:
            return self.run(problem, Schedule)
        if problem.config.greedy_first:
            return self.greedy_first(problem)
        return self.run(problem, Instant)

    def greedy_first(self, problem: Problem) -> Choice:
        """Only jobs with a candidate that fits now can be placed; when greedy places
        every one of them on its cheapest candidate, nothing can do better, and no
        model is built."""
        by_job = problem.by_job
        fitting = [j for j in problem.order if first_that_fits(problem.ledger, by_job.get(j, [])) is not None]
        sub = problem.sub(fitting, [c for j in fitting for c in by_job[j]])
        trial = Greedy().decide(sub)
        cheapest = {j: min(by_job[j], key=lambda c: (problem.costs[c], c.chips)) for j in fitting}
        if len(trial.placed) == len(fitting) and all(a.candidate is cheapest[j] for j, a in trial.placed.items()):
            trial.status = "OPTIMAL"
            trial.best_bound, trial.gap = trial.objective_value, 0.0
            trial.priority_bound = problem.priority(trial)
            trial.notes = ["every job that fits is placed on its cheapest candidate: greedy's answer is optimal"]
            return trial
        return self.run(sub, Instant)

    @staticmethod
    def run(problem: Problem, formulation) -> Choice:
        problem = on_snapshot(problem)
        choice = solve(problem, formulation(problem))
        choice.solver_calls += 1
        return choice


__all__ = ["CpSat"]
