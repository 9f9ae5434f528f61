"""Candidate placements: each job x allowed chip type x chip count x rack shape,
scored in one call into the core; infeasible ones are set aside with their
reasons and `prune_for` drops those another candidate dominates and numbers the
rest (`Candidate.index`, which indexes every per-candidate array downstream).

A single-rack candidate may go on any rack of its type with enough free chips
(the solver picks the rack); a multi-rack candidate takes chips from at most
`max_racks` racks of one of its pods (the solver picks the pod), and is scored
for that many scale-up domains.
Each (job, type, count, domains) is scored once however many racks could take
it; the solver then works on groups of interchangeable racks (Fleet.groups).

A service with a rate may also be split (splits.py): a prefill pool and a
decode pool, whose `pools` are two single-rack candidates of one chip type
each; both are placed or neither.
"""
from __future__ import annotations

import gc
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator, TypeVar

import numpy as np

from trnsched.inputs.fleet import Fleet
from trnsched.inputs.jobs import Job
from trnsched.perf import columns as col
from trnsched.perf.scoring import score_arrays
from trnsched.perf.tables import chip_table, job_table

METRICS = tuple(name for name in col.OUTPUTS if name not in ("feasible", "reason"))   # kept per candidate
T = TypeVar("T", "Candidate", "Rejection")
DEFAULT_MAX_CHIPS = {"train": 4096, "infer": 512}
DOMAIN_MULTIPLES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


def chip_counts(job: Job, domain: int, limit: int | None = None) -> list[int]:
    """The chip counts worth trying for a job: its exact count or range; else powers
    of two and whole scale-up domains from 1 to a kind-dependent ceiling (and to
    `limit`, what a fleet has)."""
    if job.chips_min is not None and job.chips_min == job.chips_max:
        return [job.chips_min]
    lo = job.chips_min or 1
    hi = job.chips_max or DEFAULT_MAX_CHIPS[job.kind]
    if limit is not None:
        hi = min(hi, limit)
    counts = {n for n in (lo, hi) if lo <= n <= hi}
    p = 1
    while p <= hi:
        if p >= lo:
            counts.add(p)
        p *= 2
    counts.update(k * domain for k in DOMAIN_MULTIPLES if lo <= k * domain <= hi)
    return sorted(counts)


class Metrics:
    """One scored (job, type, count, shape)'s metrics, read by name from the
    scoring arrays.  A dict per key held ~1.5 KB with its floats: 10 GB of the
    16 GB a 100,000-job UltraCluster instance peaked at."""

    __slots__ = ("columns", "row")

    def __init__(self, columns: dict[str, np.ndarray], row: int) -> None:
        self.columns, self.row = columns, row

    def __getitem__(self, name: str) -> float:
        return float(self.columns[name][self.row])


@dataclass(slots=True)     # millions of them at UltraCluster scale
class Candidate:
    job: int                  # index into the job list
    chip_type: str
    chips: int
    racks: tuple[int, ...]    # racks it may draw chips from
    max_racks: int            # 1 = one scale-up domain
    pods: tuple[str, ...]     # multi-rack: the pods it may use (all its racks from one of them)
    values: Metrics = field(repr=False)
    by_pod: tuple[tuple[int, ...], ...] = field(default=(), repr=False)   # multi-rack: racks per pod, as pods
    index: int | None = None  # position in the solve's candidate list (set by prune_for)
    pools: tuple["Candidate", ...] = ()   # split: the prefill and the decode pool (single-rack, one type each)
    fused: bool = False       # split: both pools on one rack, the KV cache over its scale-up fabric
    twin: "Candidate | None" = field(default=None, repr=False)   # scale-out split: the fused one with its pools

    @property
    def multi(self) -> bool:
        return self.max_racks > 1

    def as_placed(self, racks: dict[int, int]) -> "Candidate":
        """What runs on these racks: a scale-out split whose pools share a rack is
        its fused twin (the same chips, power and cost; the KV cache crosses the
        rack's fabric, so TTFT is lower)."""
        if self.twin is not None and len(racks) == 1:
            return self.twin
        return self

    @property
    def units(self) -> tuple["Candidate", ...]:
        """What takes chips: the candidate itself, or a split's two pools."""
        return self.pools or (self,)

    @property
    def energy_kwh(self) -> float:
        return self.values["energy_kwh"]

    @property
    def cost_usd(self) -> float:
        return self.values["cost_usd"]

    @property
    def duration_h(self) -> float:
        return self.values["duration_h"]


@dataclass(slots=True)
class Rejection:
    """Why a (job, chip type, count, shape) did not survive, with its metrics."""
    job: int
    chip_type: str
    chips: int
    domains: int
    reason: int
    values: Metrics


@dataclass
class CandidateSet:
    candidates: list[Candidate]
    rejected: list[Rejection]
    allowed_types: list[list[str]]      # per job: allowed chip types present in the fleet
    scored: int                         # (job, type, count, shape) tuples scored
    split_notes: dict[int, str] = field(default_factory=dict)   # per job: why it has no split candidate


@contextmanager
def collector_paused() -> Iterator[None]:
    """Millions of new objects, none in a cycle: Python's cyclic collector would
    rescan them again and again (a quarter of the time at 20,000 jobs).  Used as
    a decorator; it switches the collector process-wide."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@collector_paused()
def generate(jobs: list[Job], fleet: Fleet, split_types: str = "any") -> CandidateSet:
    """Every job's candidates on the fleet, scored; `split_types` limits the
    splits to pools of one chip type ("same") or of two ("cross")."""
    types = fleet.types_present()
    chips = [fleet.chip_types[t] for t in types]
    type_index = {t: i for i, t in enumerate(types)}
    allowed = [[t for t in types if job.allows(t, fleet.chip_types[t].stack)] for job in jobs]

    # (job, type, n, domains) -> list of (racks, max_racks, pods, racks per pod)
    Shape = tuple[tuple[int, ...], int, tuple[str, ...], tuple[tuple[int, ...], ...]]
    shapes: dict[tuple[int, str, int, int], list[Shape]] = {}
    for t in types:
        domain = fleet.chip_types[t].domain_size
        racks = [i for i, r in enumerate(fleet.racks) if r.free(t) > 0]
        pods: dict[str, list[int]] = {}
        for i in racks:
            pods.setdefault(fleet.racks[i].pod, []).append(i)
        pod_free = {p: sum(fleet.racks[i].free(t) for i in rs) for p, rs in pods.items()}
        pod_most = {p: max(fleet.racks[i].free(t) for i in rs) for p, rs in pods.items()}
        largest = max(pod_free.values(), default=0)
        per_count: dict[int, list[tuple[Shape, int]]] = {}

        def shapes_for(n: int) -> list[tuple[Shape, int]]:
            """Where n chips of this type can go; the same for every job, so computed once."""
            if n not in per_count:
                out = []
                single = tuple(i for i in racks if fleet.racks[i].free(t) >= n)
                if single and n <= domain:
                    out.append(((single, 1, (), ()), 1))
                by_k: dict[int, tuple[list[int], list[str]]] = {}
                for pod, members in pods.items():
                    if pod_free[pod] < n or n == 1:
                        continue
                    if single and n <= pod_most[pod] and n <= domain:
                        continue      # one domain holds it: no reason to split
                    k = max(2, math.ceil(n / min(pod_most[pod], domain)))
                    if k <= len(members):
                        entry = by_k.setdefault(k, ([], []))
                        entry[0].extend(members)
                        entry[1].append(pod)
                # Pods that would split the job over the same number of racks make one
                # candidate (it scores the same); the solver picks the pod.
                for k, (members, pod_names) in sorted(by_k.items()):
                    names = tuple(sorted(pod_names))
                    out.append(((tuple(sorted(members)), k, names, tuple(tuple(pods[p]) for p in names)), k))
                per_count[n] = out
            return per_count[n]

        for ji, job in enumerate(jobs):
            if t not in allowed[ji] or largest == 0 or job.disaggregation == "require":
                continue
            for n in chip_counts(job, domain, largest):
                for shape, domains in shapes_for(n):
                    shapes.setdefault((ji, t, n, domains), []).append(shape)

    keys = list(shapes)
    candidates: list[Candidate] = []
    rejected: list[Rejection] = []
    jt, ct = job_table(jobs), chip_table(chips, pue=fleet.pue)
    if keys:
        arr = np.array([(ji, type_index[t], n, d) for ji, t, n, d in keys], dtype=np.int64)
        out = score_arrays(jt, ct, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
        columns = {m: out[m] for m in METRICS}
        for row, (key, reason) in enumerate(zip(keys, out["reason"].tolist())):
            ji, t, n, d = key
            values = Metrics(columns, row)     # shared by the key's shapes
            if reason != col.OK:
                rejected.append(Rejection(ji, t, n, d, reason, values))
                continue
            for racks, k, pod_names, by_pod in shapes[key]:
                candidates.append(Candidate(ji, t, n, racks, k, pod_names, values, by_pod))
    from trnsched.splits import split_candidates      # splits.py builds on this module's Candidate
    splits, notes, scored = split_candidates(jobs, fleet, types, allowed, jt, ct, split_types)
    candidates.extend(splits)
    return CandidateSet(candidates, rejected, allowed, len(keys) + scored, notes)


@collector_paused()
def prune_for(cands: list[Candidate], costs: list[float]) -> list[Candidate]:
    """Keep, per job, chip type and shape, only candidates on the front of chips,
    power and the objective (`costs`, by position): the solver weighs nothing else.
    Within such a group a candidate with fewer chips may use every rack one with
    more chips may (a rack with room for more has room for fewer; the pods are the
    same), so fewer chips, no more power, no more racks and no higher cost
    dominate.  The survivors are numbered: `index` is the position returned (a
    candidate belongs to one solve's list)."""
    by_key: dict[tuple, list[tuple[int, float, float, int, Candidate]]] = {}
    for c, cost in zip(cands, costs):
        by_key.setdefault((c.job, c.chip_type, c.multi, c.pods, c.fused), []).append(
            (c.chips, c.values["power_kw"], cost, c.max_racks, c))
    kept = []
    for group in by_key.values():
        group.sort(key=lambda m: m[:4])
        survivors: list[tuple[int, float, float, int, Candidate]] = []
        for m in group:
            if not any(o[1] <= m[1] and o[2] <= m[2] and o[3] <= m[3] for o in survivors):
                survivors.append(m)      # sorted by chips, so every survivor has no more
        kept.extend(m[4] for m in survivors)
    kept.sort(key=lambda c: (c.job, c.chip_type, c.chips, c.max_racks, c.pods, not c.fused))
    for i, c in enumerate(kept):
        c.index = i
    return kept


def by_job(items: Iterable[T]) -> dict[int, list[T]]:
    """Candidates (or rejections) grouped by job, in the order given."""
    out: dict[int, list[T]] = {}
    for c in items:
        out.setdefault(c.job, []).append(c)
    return out
