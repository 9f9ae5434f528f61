"""Building the CP-SAT model: rack groups, variables, constraint families, hints,
and reading an answer back.  In OR-Tools' order: data, variables, constraints
(the objective and the solve are the driver's).

The model sees groups of identical racks (same pod, chips, busy chips and power
cap), not racks: a candidate is on a group, or draws so many chips from so many
racks of each group.  Capacity and power hold per group in total, plus "at most
one more-than-half-a-rack job per rack"; that is a relaxation of per-rack
packing, so its bound is a true bound.  A group of one rack is exact, so small
fleets of distinct racks, and models built with `each_rack`, are exact.

A split candidate (splits.py) has a variable per pool and group it may use
(`Vars.part`), each pool on exactly one group when the split is taken, both in
one pod; a fused split's pools are on the same group (on one rack when the group is one rack;
else the packing finds the rack, as it does for every single-rack job).
"""
from __future__ import annotations

from dataclasses import dataclass

from ortools.sat.python import cp_model

from trnsched.candidates import Candidate, by_job
from trnsched.inputs.fleet import Fleet
from trnsched.inputs.errors import InputError
from trnsched.problem import Choice, Problem
from trnsched.racks import draw_watts, headroom_watts, unit_racks, watts_per_chip


@dataclass
class RackGroup:
    racks: list[int]
    free: dict[str, int]            # free chips per type, per rack
    headroom: int | None            # watts per rack
    pod: str

    @property
    def size(self) -> int:
        return len(self.racks)


def rack_groups(fleet: Fleet, *, each_rack: bool = False) -> tuple[list[RackGroup], list[int]]:
    """The fleet's groups of interchangeable racks, and each rack's group; with
    `each_rack`, every rack is its own group (the model is then exact per rack)."""
    headroom = headroom_watts(fleet)
    groups, of_rack = [], [0] * len(fleet.racks)
    members_of = [[r] for r in range(len(fleet.racks))] if each_rack else fleet.groups()
    for g, members in enumerate(members_of):
        first = fleet.racks[members[0]]
        groups.append(RackGroup(members, {t: first.free(t) for t in first.chips}, headroom[members[0]], first.pod))
        for r in members:
            of_rack[r] = g
    return groups, of_rack


# The largest integer a model may hold: CP-SAT's are int64, but its objective
# and bounds pass through doubles, exact only below 2^53.
EXACT_INTEGERS = 2 ** 53


def check_integer_range(problem: Problem) -> None:
    """Before any model is built: the sums the models hold -- placed priority,
    and per group of racks its chips and the watts its candidates may draw --
    stay below EXACT_INTEGERS.  The input ranges (inputs/schema.py) keep every
    file and library object far inside this; it is the backstop that turns an
    overflow into an error saying which quantity, never a MODEL_INVALID."""
    priority = sum(job.priority for job in problem.jobs)
    if priority >= EXACT_INTEGERS:
        raise InputError(f"the jobs' priorities sum to {priority:.3g}, more than the solver holds exactly (2^53)",
                         field="priority")
    fleet = problem.ledger.fleet            # as given: cheaper than the ledger's view, and the caps are larger
    worst_watts = max((draw_watts(c, fleet) for c in problem.candidates), default=0)
    for group in fleet.groups():
        rack = fleet.racks[group[0]]
        drawn = len(group) * max(worst_watts, int(rack.power_cap_kw * 1000.0) if rack.power_cap_kw else 0)
        chips = len(group) * sum(rack.chips.values())
        if max(drawn, chips) >= EXACT_INTEGERS:
            raise InputError(f"{len(group)} racks like it hold {chips:,} chips that may draw {drawn:.3g} W, more "
                             f"than the solver holds exactly (2^53)", field=f"racks[{rack.id}]")


def candidate_groups(cands: list[Candidate], of_rack: list[int]) -> list[list[int]]:
    """Per candidate, the groups of the racks it may use."""
    return [sorted({of_rack[r] for r in c.racks}) for c in cands]


@dataclass
class Vars:
    take: list                                   # per candidate: chosen
    on: dict[tuple[int, int], object]            # (candidate, group) -> single-rack candidate on this group
    chips: dict[tuple[int, int], object]         # (candidate, group) -> chips from this group (multi)
    racks: dict[tuple[int, int], object]         # (candidate, group) -> racks of this group used (multi)
    pod: dict[tuple[int, str], object]           # (candidate, pod) -> the multi-rack candidate's pod
    part: dict[tuple[int, int, int], object]     # (split candidate, pool, group) -> the pool on this group
    part_groups: dict[tuple[int, int], list[int]]   # (split candidate, pool) -> the groups it may use
    split_pods: dict[int, list[str]]             # scale-out split candidate -> its pods (in `pod`), if several


def variables(model: cp_model.CpModel, cands: list[Candidate], groups: list[RackGroup],
              cgroups: list[list[int]]) -> Vars:
    """Candidates are numbered by position in `cands` here (the model's own list)."""
    v = Vars([], {}, {}, {}, {}, {}, {}, {})
    of_rack = {r: g for g, grp in enumerate(groups) for r in grp.racks} if any(c.pools for c in cands) else {}
    for i, c in enumerate(cands):
        v.take.append(model.new_bool_var(f"take_{i}"))
        if c.pools:
            allowed = set(cgroups[i])       # a cut-down model keeps fewer
            for k, u in enumerate(c.pools):
                mine = sorted({of_rack[r] for r in u.racks if r in of_rack} & allowed)
                v.part_groups[i, k] = mine
                for g in mine:
                    # A fused split's pools share a group: one literal says so for both.
                    shared = v.part.get((i, 0, g)) if c.fused else None
                    v.part[i, k, g] = shared if shared is not None else model.new_bool_var(f"part_{i}_{k}_{g}")
            pods = {groups[g].pod for k in range(len(c.pools)) for g in v.part_groups[i, k]}
            if not c.fused and len(pods) > 1:
                v.split_pods[i] = sorted(pods)
                for p in v.split_pods[i]:
                    v.pod[i, p] = model.new_bool_var(f"pod_{i}_{p}")
            continue
        if c.multi and len(c.pods) > 1:
            for p in c.pods:
                v.pod[i, p] = model.new_bool_var(f"pod_{i}_{p}")
        for g in cgroups[i]:
            if not c.multi:
                v.on[i, g] = model.new_bool_var(f"on_{i}_{g}")
            else:
                room = groups[g].free[c.chip_type]
                v.chips[i, g] = model.new_int_var(0, min(c.chips, room * groups[g].size), f"chips_{i}_{g}")
                v.racks[i, g] = model.new_int_var(0, min(c.max_racks, groups[g].size), f"racks_{i}_{g}")
    return v


def structure(model: cp_model.CpModel, v: Vars, cands: list[Candidate], groups: list[RackGroup],
              cgroups: list[list[int]]) -> None:
    """Each chosen candidate is on one group, or draws its chips from racks of one
    pod; each job has at most one candidate."""
    for i, c in enumerate(cands):
        if c.pools:
            # Each pool on one group (a fused split's pools share their literals);
            # a scale-out split's in one pod, as a multi-rack candidate's racks are.
            pods = v.split_pods.get(i, [])
            if not pods:
                for k in range(1 if c.fused else len(c.pools)):
                    model.add(sum(v.part[i, k, g] for g in v.part_groups[i, k]) == v.take[i])
            else:       # one pod, and in it one group per pool
                model.add(sum(v.pod[i, p] for p in pods) == v.take[i])
                for k in range(len(c.pools)):
                    for p in pods:
                        model.add(sum(v.part[i, k, g] for g in v.part_groups[i, k] if groups[g].pod == p)
                                  == v.pod[i, p])
        elif not c.multi:
            model.add(sum(v.on[i, g] for g in cgroups[i]) == v.take[i])
        else:
            model.add(sum(v.chips[i, g] for g in cgroups[i]) == c.chips * v.take[i])
            model.add(sum(v.racks[i, g] for g in cgroups[i]) <= c.max_racks * v.take[i])
            for g in cgroups[i]:
                model.add(v.chips[i, g] <= groups[g].free[c.chip_type] * v.racks[i, g])
            if len(c.pods) > 1:
                # All of the job's racks in one pod.
                model.add(sum(v.pod[i, p] for p in c.pods) == v.take[i])
                for g in cgroups[i]:
                    model.add(v.racks[i, g] <= groups[g].size * v.pod[i, groups[g].pod])
    take = {c.index: x for c, x in zip(cands, v.take)}
    for mine in by_job(cands).values():
        model.add_at_most_one([take[c.index] for c in mine])


@dataclass
class Use:
    """One candidate's draw on one rack group: present (a literal) with `amount`
    (an int when fixed, else a variable that is 0 when unused)."""
    candidate: int
    present: object
    amount: object
    fixed: bool

    def expr(self):
        return self.amount * self.present if self.fixed else self.amount


@dataclass
class ResourceUse:
    chips: dict[tuple[int, str], list[Use]]   # (group, chip type) -> chips drawn
    large: dict[tuple[int, str], list[Use]]   # (group, chip type) -> single-rack jobs over half a rack
    watts: dict[int, list[Use]]               # group -> watts drawn


def resource_use(v: Vars, cands: list[Candidate], fleet: Fleet, groups: list[RackGroup],
                 cgroups: list[list[int]]) -> ResourceUse:
    """What each candidate draws from each rack group: the one description of
    capacity that the instant model (sums) and the horizon model (cumulatives) share."""
    use = ResourceUse({}, {}, {})
    for i, c in enumerate(cands):
        if c.pools:
            for k, u in enumerate(c.pools):
                watts = watts_per_chip(u, fleet)
                for g in v.part_groups[i, k]:
                    grp, x = groups[g], v.part[i, k, g]
                    use.chips.setdefault((g, u.chip_type), []).append(Use(i, x, u.chips, True))
                    if 2 * u.chips > grp.free[u.chip_type]:
                        use.large.setdefault((g, u.chip_type), []).append(Use(i, x, 1, True))
                    if grp.headroom is not None and watts > 0:
                        use.watts.setdefault(g, []).append(Use(i, x, watts * u.chips, True))
            continue
        watts = watts_per_chip(c, fleet)
        for g in cgroups[i]:
            grp = groups[g]
            if not c.multi:
                chips = Use(i, v.on[i, g], c.chips, True)
                power = Use(i, v.on[i, g], watts * c.chips, True)
            else:
                chips = Use(i, v.take[i], v.chips[i, g], False)
                power = Use(i, v.take[i], watts * v.chips[i, g], False)
            use.chips.setdefault((g, c.chip_type), []).append(chips)
            if not c.multi and 2 * c.chips > grp.free[c.chip_type]:
                use.large.setdefault((g, c.chip_type), []).append(Use(i, v.on[i, g], 1, True))
            if grp.headroom is not None and watts > 0:
                use.watts.setdefault(g, []).append(power)
    return use


def capacity_sums(model: cp_model.CpModel, use: ResourceUse, groups: list[RackGroup]) -> None:
    """Placing now: per group, chips and watts drawn within what its racks have;
    two large jobs never share a rack."""
    for (g, t), terms in use.chips.items():
        model.add(sum(u.expr() for u in terms) <= groups[g].free[t] * groups[g].size)
    for (g, t), terms in use.large.items():
        if len(terms) > groups[g].size:
            model.add(sum(u.present for u in terms) <= groups[g].size)
    for g, terms in use.watts.items():
        model.add(sum(u.expr() for u in terms) <= max(0, groups[g].headroom) * groups[g].size)


def hint(model: cp_model.CpModel, v: Vars, cands: list[Candidate], choice: Choice, of_rack: list[int],
         cgroups: list[list[int]], pod_of_rack: list[str]) -> None:
    """Hint every variable with the value `choice` gives it."""
    chosen = {a.candidate.index: a for a in choice.placed.values()}
    for i, c in enumerate(cands):
        a = chosen.get(c.index)
        model.add_hint(v.take[i], a is not None)
        if c.pools:
            parts = unit_racks(c, a.racks) if a is not None else [(u, {}) for u in c.pools]
            for k, (u, part) in enumerate(parts[:1] if c.fused else parts):
                used = {of_rack[r] for r in part}
                for g in v.part_groups[i, k]:
                    model.add_hint(v.part[i, k, g], g in used)
            used_pods = {pod_of_rack[r] for r in a.racks} if a is not None else set()
            for p in v.split_pods.get(i, []):
                model.add_hint(v.pod[i, p], p in used_pods)
            continue
        per_group: dict[int, list[int]] = {}
        if a is not None:
            for r, n in a.racks.items():
                per_group.setdefault(of_rack[r], []).append(n)
        for g in cgroups[i]:
            if not c.multi:
                model.add_hint(v.on[i, g], g in per_group)
            else:
                model.add_hint(v.chips[i, g], sum(per_group.get(g, [])))
                model.add_hint(v.racks[i, g], len(per_group.get(g, [])))
        if c.multi and len(c.pods) > 1:
            used = {pod_of_rack[r] for r in a.racks} if a is not None else set()
            for p in c.pods:
                model.add_hint(v.pod[i, p], p in used)


def hint_from(model: cp_model.CpModel, v: Vars, solver: cp_model.CpSolver) -> None:
    """Hint every variable with the value a previous solve gave it."""
    for x in v.take:
        model.add_hint(x, solver.boolean_value(x))
    # A fused split's two pools share their literals: each variable hinted once.
    for x in {x.index: x for x in list(v.on.values()) + list(v.pod.values()) + list(v.part.values())}.values():
        model.add_hint(x, solver.boolean_value(x))
    for x in list(v.chips.values()) + list(v.racks.values()):
        model.add_hint(x, solver.value(x))


def read(solver: cp_model.CpSolver, v: Vars, cands: list[Candidate],
         cgroups: list[list[int]]) -> dict[int, tuple[Candidate, dict[int, tuple[int, int]]]]:
    """Per placed job: its candidate and, per group, (chips, racks) drawn from it
    (a split: a tuple of those, one per pool)."""
    chosen = {}
    for i, c in enumerate(cands):
        if solver.boolean_value(v.take[i]):
            if c.pools:
                parts = tuple({g: (u.chips, 1) for g in v.part_groups[i, k] if solver.boolean_value(v.part[i, k, g])}
                              for k, u in enumerate(c.pools))
            elif not c.multi:
                parts = {g: (c.chips, 1) for g in cgroups[i] if solver.boolean_value(v.on[i, g])}
            else:
                parts = {g: (solver.value(v.chips[i, g]), solver.value(v.racks[i, g])) for g in cgroups[i]
                         if solver.value(v.chips[i, g]) > 0}
            chosen[c.job] = (c, parts)
    return chosen
