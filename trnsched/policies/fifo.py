"""fifo: strict arrival order; the head of the queue takes its first candidate
that fits (first-fit's order), and when it fits nowhere nothing behind it starts
(no backfilling)."""
from __future__ import annotations

from trnsched.policies.sequential import first_fit_key, place_in_order
from trnsched.problem import Choice, Problem


class Fifo:
    name = "fifo"
    offered = frozenset({"replay"})

    def decide(self, problem: Problem) -> Choice:
        if problem.horizon is not None:
            raise ValueError("fifo decides at one instant: it has no horizon form")
        return place_in_order(problem, first_fit_key(problem.ledger.fleet), jobs=problem.order,
                              stop_at_first_miss=True)
