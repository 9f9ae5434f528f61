"""CP-SAT: the model (model.py), the one two-phase driver (driver.py), its two
formulations -- placing now (instant.py) and over a horizon (horizon.py) -- and
the neighbourhood search for big instances (search.py)."""
from trnsched.cpsat.driver import on_snapshot, solve
from trnsched.cpsat.horizon import Schedule
from trnsched.cpsat.instant import Instant
from trnsched.problem import Choice, Problem


def place(problem: Problem) -> Choice:
    """Most placed priority, then the least objective, with every job placed now."""
    problem = on_snapshot(problem)
    choice = solve(problem, Instant(problem))
    choice.solver_calls += 1
    return choice


def schedule(problem: Problem) -> Choice:
    """Most placed priority, then the least objective plus weighted completion
    time, each job at a start within the horizon."""
    problem = on_snapshot(problem)
    choice = solve(problem, Schedule(problem))
    choice.solver_calls += 1
    return choice


__all__ = ["place", "schedule"]
