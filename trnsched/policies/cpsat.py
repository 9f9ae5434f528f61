"""cpsat: the CP-SAT model (trnsched/cpsat): most placed priority, then the least
objective; over a horizon, the time-indexed model."""
from __future__ import annotations

from trnsched import cpsat
from trnsched.policies.greedy import Greedy
from trnsched.problem import Choice, Problem
from trnsched.racks import Fit


class CpSat:
    name = "cpsat"
    offered = frozenset({"solve", "replay"})

    def decide(self, problem: Problem) -> Choice:
        if problem.horizon is not None:
            return cpsat.schedule(problem)
        # Only jobs with a candidate that fits now can be placed.  When greedy
        # places every one of them on its cheapest candidate, nothing can do
        # better, and the solver is not called (most replay decisions).
        by_job = problem.by_job
        fitting = [j for j in problem.order
                   if any(isinstance(problem.ledger.allocate(c), Fit) for c in by_job.get(j, []))]
        sub = problem.sub(fitting, [c for j in fitting for c in by_job[j]])
        trial = Greedy().decide(sub)
        cheapest = {j: min(by_job[j], key=lambda c: (problem.costs[c], c.chips)) for j in fitting}
        if len(trial.placed) == len(fitting) and all(a.candidate is cheapest[j] for j, a in trial.placed.items()):
            trial.status = "OPTIMAL"
            trial.best_bound, trial.gap = trial.objective_value, 0.0
            trial.notes = ["every job that fits is placed on its cheapest candidate: greedy's answer is optimal"]
            return trial
        return cpsat.place(sub)
