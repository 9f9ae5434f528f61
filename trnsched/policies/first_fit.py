"""first-fit: jobs by priority; each takes the first candidate that fits (fewest
chips, chip types in fleet order), now or at its earliest start."""
from __future__ import annotations

from trnsched.policies.sequential import first_fit_key, place_in_order, schedule_in_order
from trnsched.problem import Choice, Problem


class FirstFit:
    name = "first-fit"
    offered = frozenset({"solve"})

    def decide(self, problem: Problem) -> Choice:
        key = first_fit_key(problem.ledger.fleet)
        if problem.horizon is None:
            return place_in_order(problem, key)
        return schedule_in_order(problem, key, lambda job, options: options[0] if options else None)
