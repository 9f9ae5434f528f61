"""greedy: jobs by priority; each takes its best candidate for the objective that
fits now, or, over a horizon, the candidate and start whose cost plus weighted
completion time is least."""
from __future__ import annotations

from trnsched.inputs.jobs import Job
from trnsched.policies.sequential import Option, place_in_order, schedule_in_order
from trnsched.problem import Choice, Problem


class Greedy:
    name = "greedy"
    offered = frozenset({"solve", "replay"})

    def decide(self, problem: Problem) -> Choice:
        costs = problem.costs

        def key(c):
            return costs[c], c.chips

        if problem.horizon is None:
            return place_in_order(problem, key)
        horizon = problem.horizon

        def cheapest(job: Job, options: list[Option]) -> Option | None:
            if not options:
                return None
            return min(options, key=lambda o: (horizon.value(job, o[0], costs[o[0]], o[1]), o[1], o[0].chips))

        return schedule_in_order(problem, key, cheapest)
