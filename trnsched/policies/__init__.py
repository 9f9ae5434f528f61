"""Policies: one signature, `decide(problem) -> Choice`, whether a workload is
placed now, scheduled over a horizon, or a replay decides for its queue.

A policy is a class with a `name`, the commands that offer it (`offered`:
"solve" covers placing now and over a horizon, "replay" the decisions of
`trnsched simulate`) and `decide`; a new one is one module plus one line here.
"""
from __future__ import annotations

from typing import Protocol

from trnsched.policies.cpsat import CpSat
from trnsched.policies.fifo import Fifo
from trnsched.policies.first_fit import FirstFit
from trnsched.policies.greedy import Greedy
from trnsched.problem import Choice, Problem


class Policy(Protocol):
    name: str
    offered: frozenset[str]

    def decide(self, problem: Problem) -> Choice: ...


POLICIES: dict[str, Policy] = {p.name: p for p in (CpSat(), Greedy(), FirstFit(), Fifo())}


def offered(command: str) -> tuple[str, ...]:
    """The names of the policies a command offers, in registry order."""
    return tuple(name for name, p in POLICIES.items() if command in p.offered)


__all__ = ["POLICIES", "Policy", "offered"]
