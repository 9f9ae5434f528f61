"""Large-neighbourhood search for big instances.

On big instances CP-SAT's whole-fleet model improves slowly, while greedy leaves
much on the table (each job, in priority order, takes its cheapest candidate
that still fits, stranding later jobs on expensive ones).  The search frees a
few dozen jobs at a time and re-places them exactly (per-rack model,
packing.py, everything else held fixed), keeping the result when it places
more priority, or as much for less.  Four kinds of neighbourhood take turns:
pods re-packed side by side (PodBatches, on a backend), by chip type
(TypeRounds), clearing the racks one job needs (Clearing), and one big job
against the waiting jobs that could share its chips (Displacing).  Each round's
neighbourhood is chosen without randomness, so in deterministic mode the answer
repeats.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


from trnsched.policies.cpsat.backends import Backend, InProcess
from trnsched.policies.cpsat.clock import Clock
from trnsched.policies.cpsat.driver import record
from trnsched.policies.cpsat.packing import read_back, solve_task, task_for
from trnsched.problem import Allocation, Choice, Problem
from trnsched.racks import RackLedger

NEIGHBOURHOOD = 12      # jobs of each kind per round
MAX_DEPTH = 4           # after a round finds nothing, the next for that type looks this much further down
CLEARING_MOVERS = 30    # jobs a clearing round may move off the racks it clears
POD_MOVERS = 15         # placed jobs a pod's sub-problem may move within the pod (measured on
POD_WAITING = 5         # 1,000 jobs: 40 + 10 found the same in 2 s as 15 + 5 in 0.5 s)
PODS_PER_SLOT = 4       # a batch re-packs this many pods per parallel slot, the next batch the next ones


def improve(problem: Problem, choice: Choice, clock: Clock, *, work: float, backend: Backend | None = None,
            stats: SearchStats | None = None) -> tuple[Choice, int]:
    """Improve `choice` within `work` seconds of the clock's currency (deterministic
    seconds of the rounds' solves, or wall seconds, model building included, and
    never past the deadline); returns it and how many rounds it solved.  The kinds
    of neighbourhood take turns while they have one to offer; a pod batch's
    sub-problems run side by side on `backend` (default: here, one by one)."""
    costs = problem.costs
    backend = backend or InProcess()
    stats = stats if stats is not None else SearchStats()
    cheapest = {j: min(cs, key=lambda c: costs[c]) for j, cs in problem.by_job.items()}
    placed = dict(choice.placed)
    held = holding(problem, placed)      # the room `placed` leaves, kept in step with it
    kinds = [PodBatches(problem, cheapest), TypeRounds(problem, cheapest), Clearing(problem, cheapest),
             Displacing(problem, cheapest)]
    solved, rounds, turn = 0.0, 0, 0
    began = time.perf_counter()
    per_round = max(0.05, min(0.5, work / 20))
    slots = problem.config.workers

    def spent() -> float:
        return solved if clock.deterministic else time.perf_counter() - began

    while spent() + per_round <= work + 1e-9 and not clock.spent():
        ready = [k for k in kinds[turn % len(kinds):] + kinds[:turn % len(kinds)] if not k.done]
        turn += 1
        if not ready:
            break
        kind = ready[0]
        # A batch takes one round per slot-full of tasks: no more than the work left holds.
        fits = max(1, int((work - spent()) / per_round)) * slots
        hoods = kind.neighbourhoods(placed, held, min(slots * PODS_PER_SLOT, fits))
        if not hoods:
            continue
        kept = held.copy()
        for j in {j for h in hoods for j in h.jobs}:
            if j in kept.held:
                kept.release(j)
        room = RackLedger(kept.as_fleet())
        batch = len(hoods) > 1
        # One task alone may use every CP-SAT worker; side by side, one each.
        limits = clock.limits(per_round, workers=1 if batch else None)
        work_items = []
        for h in hoods:
            sub = problem.sub(h.jobs, [c for j in h.jobs for c in problem.by_job[j]], ledger=room)
            current = Choice({j: placed[j] for j in h.jobs if j in placed})
            current.objective_value = sub.value(current)
            work_items.append((sub, current, task_for(sub, current, limits, racks=h.racks, label=h.label)))
        tasks = [t for _, _, t in work_items if t is not None]
        rounds += len(tasks)
        batch_began = time.perf_counter()
        answers = iter(backend.run(tasks) if batch else [solve_task(t) for t in tasks])
        if batch:
            stats.batch(time.perf_counter() - batch_began, len(tasks))
        improved: set[str] = set()
        for (sub, current, task), hood in zip(work_items, hoods):
            if task is None:
                continue
            answer = next(answers)
            if batch:
                stats.task(answer.wall_s, answer.deterministic_s)
            # In deterministic mode a batch counts its work per slot, whatever
            # the backend, so that every backend stops after the same rounds.
            solved += answer.deterministic_s / (min(slots, len(tasks)) if batch else 1)
            found = read_back(sub, task, answer)
            gain = sub.priority(found) - sub.priority(current)
            if gain > 0 or (gain == 0 and found.objective_value < current.objective_value
                            - 1e-9 * max(1.0, current.objective_value)):
                for j in sub.order:
                    if placed.pop(j, None) is not None:
                        held.release(j)
                placed.update(found.placed)
                for a in found.placed.values():
                    held.commit(a.candidate, a.racks)
                improved.add(hood.label)
        if improved:
            record(problem.config, 3, problem.value(Choice(placed)))
            for other in kinds:
                if other is not kind:
                    other.changed()     # an exhausted kind may find moves again
        kind.outcome(improved)
    out = Choice(placed)
    out.objective_value = problem.value(out)
    return out, rounds


def holding(problem: Problem, placed: dict[int, Allocation]) -> RackLedger:
    """A ledger of the problem's fleet with these allocations committed."""
    ledger = RackLedger(problem.fleet)
    for a in placed.values():
        ledger.commit(a.candidate, a.racks)
    return ledger


@dataclass(frozen=True)
class Neighbourhood:
    jobs: list[int]                 # freed and re-placed exactly
    racks: list[int] | None = None  # the racks they may use (None: any)
    label: str = ""


@dataclass
class SearchStats:
    """The pod batches' parallel sub-problems, for a user projecting the speed-up
    on more machines: seconds per task and per batch.  Wall seconds, except in
    deterministic mode, where the answer file must not depend on load: there the
    tasks' CP-SAT deterministic seconds, and no batch times."""
    task_seconds: list[float] = field(default_factory=list)
    task_work: list[float] = field(default_factory=list)
    batch_seconds: list[float] = field(default_factory=list)
    batch_tasks: list[int] = field(default_factory=list)

    def task(self, wall_s: float, deterministic_s: float) -> None:
        self.task_seconds.append(wall_s)
        self.task_work.append(deterministic_s)

    def batch(self, seconds: float, tasks: int) -> None:
        self.batch_seconds.append(seconds)
        self.batch_tasks.append(tasks)

    def summary(self, backend: str, workers: int, deterministic: bool = False) -> dict:
        out = {"backend": backend, "workers": workers, "batches": len(self.batch_tasks), "tasks": len(self.task_work),
               "tasks_per_batch": self.batch_tasks}
        if deterministic:
            out["task_deterministic_s_total"] = round(sum(self.task_work), 3)
            return out
        t = self.task_seconds
        out.update(task_seconds_total=round(sum(t), 3), task_seconds_max=round(max(t, default=0.0), 3),
                   batch_seconds_total=round(sum(self.batch_seconds), 3))
        return out


class PodBatches:
    """Pods are independent once each job is given to one pod (jobs never span
    pods, and power caps are per rack): a batch gives each pod the jobs on it
    that gain most by moving (largest regret first, then the costliest) and
    the waiting jobs that could use it, each waiting job to the one pod with the
    most free chips of its types, and re-packs every pod exactly, side by side.
    A pod that found nothing looks further down its list next time."""

    def __init__(self, problem: Problem, cheapest: dict) -> None:
        self.problem, self.cheapest = problem, cheapest
        members: dict[str, list[int]] = {}
        for i, r in enumerate(problem.fleet.racks):
            members.setdefault(r.pod, []).append(i)
        self.pods = members if len(members) > 1 else {}
        self.pod_of = {r: p for p, rs in members.items() for r in rs}
        self.depth = dict.fromkeys(self.pods, 0)
        self.labels: list[str] = []
        self.reached: dict[int, tuple[list[str], dict[str, int]]] = {}
        self.next_pod = self.idle = 0
        self.done = not self.pods

    def neighbourhoods(self, placed: dict[int, Allocation], held: RackLedger, most: int) -> list[Neighbourhood]:
        p, costs = self.problem, self.problem.costs
        on_pod: dict[str, list[int]] = {pod: [] for pod in self.pods}
        for j, a in placed.items():
            on_pod[self.pod_of[next(iter(a.racks))]].append(j)
        free = {pod: {} for pod in self.pods}
        for pod, racks in self.pods.items():
            for r in racks:
                for t, n in held.room.free[r].items():
                    free[pod][t] = free[pod].get(t, 0) + n
        waiting_of: dict[str, list[int]] = {pod: [] for pod in self.pods}
        for j in p.job_order():
            if j in placed or j not in self.cheapest:
                continue
            pods, least = self.reach(j)
            best = max(pods, key=lambda pod: (sum(free[pod].get(t, 0) for t in least), -len(waiting_of[pod])))
            if len(waiting_of[best]) < POD_WAITING:
                waiting_of[best].append(j)
                for t, n in least.items():     # what it may take, so the next waiting job looks elsewhere
                    free[best][t] = free[best].get(t, 0) - n
        hoods = []
        names = list(self.pods)
        turn = names[self.next_pod:] + names[:self.next_pod]
        for pod in turn:
            if len(hoods) == most:
                break
            self.next_pod = (names.index(pod) + 1) % len(names)
            racks = self.pods[pod]
            mine = sorted(on_pod[pod], key=lambda j: (-(costs[placed[j].candidate] - costs[self.cheapest[j]]),
                                                      -costs[placed[j].candidate], j))
            start = self.depth[pod] * POD_MOVERS // 2
            movers = mine[start:start + POD_MOVERS] or mine[:POD_MOVERS]
            if movers or waiting_of[pod]:
                hoods.append(Neighbourhood(movers + waiting_of[pod], racks, f"pod {pod}"))
        self.labels = [h.label[4:] for h in hoods]
        self.done = not hoods
        return hoods

    def reach(self, j: int) -> tuple[list[str], dict[str, int]]:
        """The pods a job's candidates reach, and its fewest chips per chip type
        (once per job: a single-rack candidate lists every rack of its type)."""
        if j not in self.reached:
            cands = self.problem.by_job[j]
            least: dict[str, int] = {}
            for c in cands:
                least[c.chip_type] = min(least.get(c.chip_type, c.chips), c.chips)
            self.reached[j] = (sorted({self.pod_of[r] for c in cands for r in c.racks}), least)
        return self.reached[j]

    def changed(self) -> None:
        self.idle = 0
        self.done = not self.pods

    def outcome(self, improved: set[str]) -> None:
        for pod in self.labels:
            self.depth[pod] = 0 if f"pod {pod}" in improved else self.depth[pod] + 1
        self.idle = 0 if improved else self.idle + 1
        self.done = self.idle >= MAX_DEPTH * max(1, len(self.pods) // len(self.labels or [0]))


class TypeRounds:
    """Chip types take turns.  A round frees the jobs whose cheapest candidate is on
    the type but who run elsewhere (largest regret first), the jobs on the type that
    lose least by moving off it, and unplaced jobs that could use it; after a round
    that finds nothing, that type's next round looks further down the lists."""

    def __init__(self, problem: Problem, cheapest: dict) -> None:
        self.problem, self.cheapest = problem, cheapest
        self.types = problem.fleet.types_present()
        self.depth = {t: 0 for t in self.types}
        self.turn = self.idle = 0
        self.current = self.types[0] if self.types else None

    @property
    def done(self) -> bool:
        return not self.types or self.idle >= len(self.types) * MAX_DEPTH

    def neighbourhoods(self, placed: dict[int, Allocation], held: RackLedger, most: int = 1) -> list[Neighbourhood]:
        p, costs, cheapest = self.problem, self.problem.costs, self.cheapest
        t = self.current = self.types[self.turn % len(self.types)]
        self.turn += 1
        take = slice(self.depth[t] * NEIGHBOURHOOD, (self.depth[t] + 1) * NEIGHBOURHOOD)

        def regret(j: int) -> float:
            return costs[placed[j].candidate] - costs[cheapest[j]]

        def move_loss(j: int) -> float:
            """What moving off this type costs the job at the least."""
            other = [costs[c] for c in p.by_job[j] if c.chip_type != t]
            return (min(other) if other else math.inf) - costs[placed[j].candidate]

        unhappy = sorted((j for j in placed if cheapest[j].chip_type == t and regret(j) > 1e-9),
                         key=lambda j: (-regret(j), j))[take]
        holders = sorted((j for j in placed if placed[j].candidate.chip_type == t and j not in unhappy),
                         key=lambda j: (move_loss(j), j))[:NEIGHBOURHOOD]
        waiting = sorted((j for j in p.by_job if j not in placed and any(c.chip_type == t for c in p.by_job[j])),
                         key=lambda j: (-p.jobs[j].priority, costs[cheapest[j]], j))[take]
        if not unhappy and not waiting:
            self.depth[t] = MAX_DEPTH            # nothing further down either
            self.idle += 1
            return []
        return [Neighbourhood(unhappy + holders + waiting, None, f"type {t}")]

    def changed(self) -> None:
        self.idle = 0

    def outcome(self, improved: set[str]) -> None:
        better = bool(improved)
        t = self.current
        if better:
            self.depth[t], self.idle = 0, 0
        else:
            self.depth[t] = min(self.depth[t] + 1, MAX_DEPTH)
            self.idle += 1


class OncePerJob:
    """A kind that tries each job once until a round succeeds, which makes every
    job eligible again."""

    def __init__(self, problem: Problem, cheapest: dict) -> None:
        self.problem, self.cheapest = problem, cheapest
        self.tried: set[int] = set()
        self.done = False

    def changed(self) -> None:
        self.tried.clear()
        self.done = False

    def outcome(self, improved: set[str]) -> None:
        if improved:
            self.changed()


class Clearing(OncePerJob):
    """Room for one job on its cheapest candidate: the job and every job holding
    the racks it would take there (the rack with the fewest jobs to move, or the
    roomiest racks of the pod with the fewest), so that the
    exact model can move them elsewhere.  Unplaced jobs come first (highest
    priority first), then placed jobs by regret; each job is tried once until a
    round succeeds, which makes every job eligible again.  Type rounds rarely make
    such moves: a big job's racks are held by many small jobs on other lists."""

    def neighbourhoods(self, placed: dict[int, Allocation], held: RackLedger, most: int = 1) -> list[Neighbourhood]:
        p, costs = self.problem, self.problem.costs
        waiting = [j for j in p.job_order() if j not in placed and j in self.cheapest and j not in self.tried]
        regret = {j: costs[a.candidate] - costs[self.cheapest[j]] for j, a in placed.items() if j not in self.tried}
        unhappy = sorted((j for j, r in regret.items() if r > 1e-9), key=lambda j: (-regret[j], j))
        queue = waiting + unhappy
        if not queue:
            self.done = True
            return []
        j = queue[0]
        self.tried.add(j)
        target = self.cheapest[j]
        on_rack: dict[int, list[int]] = {}
        for k, a in placed.items():
            for r in a.racks:
                on_rack.setdefault(r, []).append(k)
        t = target.chip_type

        def room(r: int) -> int:
            """Chips of the type on rack r once every job on it, this one included,
            has moved (chips only: the exact model checks the power)."""
            return held.room.free[r].get(t, 0) + sum(placed[k].racks[r] for k in on_rack.get(r, ())
                                                      if placed[k].candidate.chip_type == t)

        if not target.multi:
            fitting = [r for r in target.racks if room(r) >= target.chips]
            racks = sorted(fitting, key=lambda r: (len(on_rack.get(r, ())), -room(r), r))[:1]
        else:
            racks, fewest = [], math.inf
            for pod in target.by_pod:
                roomiest = sorted(pod, key=lambda r: (-room(r), r))[:target.max_racks]
                movers = sum(len(on_rack.get(r, ())) for r in roomiest)
                if sum(room(r) for r in roomiest) >= target.chips and movers < fewest:
                    racks, fewest = roomiest, movers
        if not racks:
            return []
        holders = sorted({k for r in racks for k in on_rack.get(r, ()) if k != j},
                         key=lambda k: (costs[placed[k].candidate], k))[:CLEARING_MOVERS]
        return [Neighbourhood([j] + holders, None, f"clearing for job {j}")]


class Displacing(OncePerJob):
    """Room for several waiting jobs where one big job runs: the placed job with
    the most chips per unit of priority, and the waiting jobs that could use
    its chip type in its pod, best priority per chip first, until they would
    fill its chips twice over.  The exact model keeps the big job, or drops it
    for more priority (or as much for less).  No other kind makes this move:
    greedy places big jobs first, and each round of the others frees one
    waiting job at a time, never enough priority to outweigh a big job."""

    def __init__(self, problem: Problem, cheapest: dict) -> None:
        super().__init__(problem, cheapest)
        self.pod_of = [r.pod for r in problem.fleet.racks]
        self.least: dict[int, dict[tuple[str, str], int]] = {}

    def fewest(self, j: int) -> dict[tuple[str, str], int]:
        """The fewest chips the job can run on per (chip type, pod), once per job."""
        if j not in self.least:
            out: dict[tuple[str, str], int] = {}
            for c in self.problem.by_job[j]:
                for pod in {self.pod_of[r] for r in c.racks}:
                    out[c.chip_type, pod] = min(out.get((c.chip_type, pod), c.chips), c.chips)
            self.least[j] = out
        return self.least[j]

    def neighbourhoods(self, placed: dict[int, Allocation], held: RackLedger, most: int = 1) -> list[Neighbourhood]:
        p = self.problem
        waiting = [j for j in p.by_job if j not in placed]
        if not waiting:
            self.done = True
            return []
        big = sorted((j for j in placed if j not in self.tried),
                     key=lambda j: (-placed[j].candidate.chips / p.jobs[j].priority, j))
        if not big:
            self.done = True
            return []
        h = big[0]
        self.tried.add(h)
        held = placed[h]
        t, pod = held.candidate.chip_type, self.pod_of[next(iter(held.racks))]

        takers = sorted(((j, n) for j in waiting if (n := self.fewest(j).get((t, pod), 0)) > 0),
                        key=lambda jn: (-p.jobs[jn[0]].priority / jn[1], jn[0]))
        chosen, chips = [], 0
        for j, n in takers:
            if chips >= 2 * held.candidate.chips or len(chosen) == CLEARING_MOVERS:
                break
            chosen.append(j)
            chips += n
        if sum(p.jobs[j].priority for j in chosen) < p.jobs[h].priority:
            return []       # dropping it could not win priority
        # The jobs sharing its racks may have to move for the newcomers to fit.
        sharing = sorted(k for k, a in placed.items() if k != h and not a.racks.keys().isdisjoint(held.racks))
        return [Neighbourhood([h] + chosen + sharing[:CLEARING_MOVERS], None, f"displacing job {h}")]
