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

A service with a rate may also be split (`split_candidates`): a prefill pool
and a decode pool, sized by the core for each (prefill type, decode type,
link).  Its `pools` are two single-rack candidates of one chip type each; a
fused split puts both on one rack (one hybrid rack, or one scale-up domain of
one type) and its KV cache crosses the scale-up fabric; a scale-out split puts
each pool on a rack of its type, both in one pod, and the KV cache crosses the
pod's network.  Both pools are placed or neither.
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
from trnsched.perf.scoring import score_arrays, score_pool_arrays
from trnsched.perf.tables import chip_table, job_table

METRICS = tuple(name for name in col.OUTPUTS if name not in ("feasible", "reason"))   # kept per candidate
T = TypeVar("T", "Candidate", "Rejection")
DEFAULT_MAX_CHIPS = {"train": 4096, "infer": 512}
DOMAIN_MULTIPLES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
SPLIT_TYPES = ("any", "same", "cross")   # which (prefill, decode) chip type pairs a split may have
# Per job: the cheapest and the most frugal (energy) pool pairs kept, per link.  A
# scale-out pool may go on any rack of its type, so its variables span every rack
# group: keeping three of those made the generated 100-job model 30% larger and
# its priority phase twice as slow; fused pairs live on the few racks holding both.
SPLITS_KEPT = {col.FUSED: 3, col.SCALE_OUT: 1}


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
    splits, notes, scored = split_candidates(jobs, fleet, types, allowed, jt, ct, split_types)
    candidates.extend(splits)
    return CandidateSet(candidates, rejected, allowed, len(keys) + scored, notes)


# What a scale-out split and its fused twin must share for the twin to stand in
# for it: the same pools, drawing the same power (only TTFT and the transfer differ).
TWIN_FIELDS = ("prefill_tp", "prefill_pp", "prefill_replicas", "decode_tp", "decode_pp", "decode_replicas",
               "prefill_power_kw", "decode_power_kw")


def split_label(prefill: str, decode: str) -> str:
    """A split's chip type as results show it: prefill type + decode type."""
    return f"{prefill}+{decode}"


def pool_columns(out: dict[str, np.ndarray], prices: np.ndarray) -> tuple[dict, dict, dict]:
    """The metric columns of split candidates: the job's combined figures and
    each pool's, under the names co-located candidates use (Metrics reads them)."""
    n = len(out["reason"])
    zero = np.zeros(n)
    duration = out["duration_h"]
    extra = {k: out[k] for k in ("kv_bytes", "kv_transfer_s", "kv_link_share")}
    combined = {m: zero for m in METRICS}
    combined.update(ttft_s=out["ttft_s"], tpot_s=out["tpot_s"], latency_s=out["latency_s"],
                    tokens_per_s=out["tokens_per_s"], batch=out["decode_batch"], duration_h=duration,
                    replicas=out["prefill_replicas"] + out["decode_replicas"],
                    replicas_needed=out["prefill_replicas"] + out["decode_replicas"],
                    power_kw=out["power_kw"], energy_kwh=out["energy_kwh"], cost_usd=out["cost_usd"],
                    mem_per_chip=np.maximum(out["prefill_mem_per_chip"], out["decode_mem_per_chip"]), **extra)
    roles = []
    for role, price in zip(("prefill", "decode"), prices):
        pool = {m: zero for m in METRICS}
        pool.update(tp=out[f"{role}_tp"], pp=out[f"{role}_pp"], dp=out[f"{role}_replicas"],
                    replicas=out[f"{role}_replicas"], replicas_needed=out[f"{role}_replicas"],
                    duration_h=duration, power_kw=out[f"{role}_power_kw"],
                    energy_kwh=out[f"{role}_power_kw"] * duration,
                    cost_usd=out[f"{role}_chips"] * price * duration, mem_per_chip=out[f"{role}_mem_per_chip"],
                    utilisation=out[f"{role}_util"], **extra)
        if role == "prefill":
            pool.update(ttft_s=out["ttft_s"])
        else:
            pool.update(tpot_s=out["tpot_s"], batch=out["decode_batch"], tokens_per_s=out["tokens_per_s"])
        roles.append(pool)
    return combined, roles[0], roles[1]


def split_candidates(jobs: list[Job], fleet: Fleet, types: list[str], allowed: list[list[str]],
                     jt: np.ndarray, ct: np.ndarray, split_types: str = "any"
                     ) -> tuple[list[Candidate], dict[int, str], int]:
    """Each service's prefill/decode pool pairs: every (prefill type, decode type)
    it allows, fused where one rack can hold both pools and over scale-out where
    a rack of each type can hold its pool; per job and link the cheapest and the
    most frugal pairs (SPLITS_KEPT of each: the solver weighs nothing else).  Returns them, per job why it has none, and the rows scored."""
    type_index = {t: i for i, t in enumerate(types)}
    notes: dict[int, str] = {}
    rows = []
    for ji, job in enumerate(jobs):
        if job.is_train:
            continue
        if not job.may_split:
            notes[ji] = ("disaggregation is off for it" if job.disaggregation == "never" else
                         "disaggregation needs a rate_rps" if job.rate_rps <= 0 else
                         "disaggregation was not tried: a fixed batch, offline flag or parallelism hints fix "
                         "a co-located layout")
            continue
        for p in allowed[ji]:
            for d in allowed[ji]:
                if (split_types == "same" and p != d) or (split_types == "cross" and p == d):
                    continue
                for link in (col.FUSED, col.SCALE_OUT):
                    rows.append((ji, type_index[p], type_index[d], link))
    if not rows:
        return [], notes, 0
    arr = np.array(rows, dtype=np.int64)
    out = score_pool_arrays(jt, ct, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
    prices = (ct[arr[:, 1], col.C_PRICE_HR], ct[arr[:, 2], col.C_PRICE_HR])
    combined, prefill, decode = pool_columns(out, prices)
    reasons = out["reason"].tolist()
    p_chips = out["prefill_chips"].astype(np.int64).tolist()
    d_chips = out["decode_chips"].astype(np.int64).tolist()

    cost, energy = out["cost_usd"].tolist(), out["energy_kwh"].tolist()
    places = SplitPlaces(fleet)
    # Where each feasible row may go, and per (job, link) the rows worth keeping:
    # the cheapest and most frugal, chosen before any object is made.
    feasible: dict[tuple[int, int], list[int]] = {}
    where: dict[int, tuple] = {}
    why: dict[int, list[str]] = {}
    for row, (ji, pi, di, link) in enumerate(rows):
        p, d = types[pi], types[di]
        if reasons[row] != col.OK:
            why.setdefault(ji, []).append(f"{p} prefill + {d} decode: {col.REASON_NAMES[reasons[row]]}")
            continue
        n_p, n_d = p_chips[row], d_chips[row]
        job = jobs[ji]
        if not (job.chips_min or 1) <= n_p + n_d <= (job.chips_max or n_p + n_d):
            why.setdefault(ji, []).append(f"{n_p} {p} (prefill) + {n_d} {d} (decode) is outside the job's chips "
                                          "range")
            continue
        found = places.fused(p, n_p, d, n_d) if link == col.FUSED else places.scale_out(p, n_p, d, n_d)
        if found is None:
            why.setdefault(ji, []).append(
                f"{n_p} {p} (prefill) + {n_d} {d} (decode) in one rack: no rack has them free" if link == col.FUSED
                else f"no pod has {n_p} {p} (prefill) and {n_d} {d} (decode) free on a rack each")
            continue
        where[row] = found
        feasible.setdefault((ji, link), []).append(row)
    chosen_rows: list[int] = []
    for (_, link), group in feasible.items():
        keep = SPLITS_KEPT[link]
        picked = dict.fromkeys(sorted(group, key=lambda r: (cost[r], energy[r]))[:keep])
        picked.update(dict.fromkeys(sorted(group, key=lambda r: (energy[r], cost[r]))[:keep]))
        chosen_rows.extend(picked)

    def split(row: int, racks_p: tuple[int, ...], racks_d: tuple[int, ...], fused: bool,
              twin: Candidate | None = None) -> Candidate:
        ji, pi, di, _ = rows[row]
        p, d, n_p, n_d = types[pi], types[di], p_chips[row], d_chips[row]
        return Candidate(ji, split_label(p, d), n_p + n_d, tuple(sorted(set(racks_p) | set(racks_d))), 1, (),
                         Metrics(combined, row), pools=(Candidate(ji, p, n_p, racks_p, 1, (), Metrics(prefill, row)),
                                                        Candidate(ji, d, n_d, racks_d, 1, (), Metrics(decode, row))),
                         fused=fused, twin=twin)

    kept: list[Candidate] = []
    for row in sorted(chosen_rows):
        ji, pi, di, link = rows[row]
        if link == col.FUSED:
            kept.append(split(row, where[row], where[row], True))
            continue
        # The fused split of the same pools, for when both land on one rack (Candidate.as_placed).
        twin = None
        fused_row = row - 1        # rows come in (fused, scale-out) pairs
        if reasons[fused_row] == col.OK and all(out[k][fused_row] == out[k][row] for k in TWIN_FIELDS):
            both = places.fused(types[pi], p_chips[row], types[di], d_chips[row]) or ()
            twin = split(fused_row, both, both, True)
        kept.append(split(row, *where[row], False, twin))
    for ji, reasons_of in why.items():
        if (ji, col.FUSED) not in feasible and (ji, col.SCALE_OUT) not in feasible:
            notes[ji] = "disaggregation tried, none fits: " + "; ".join(sorted(set(reasons_of))[:3])
    return kept, notes, len(rows)


class SplitPlaces:
    """Where a split's pools may go, by (type, chips) -- the same for every job,
    so each answer is worked out once: the racks with the chips free, and which
    pods they are in."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.holding: dict[tuple[str, int], tuple[int, ...]] = {}
        self.pods: dict[tuple[str, int], frozenset[str]] = {}
        self.paired: dict[tuple[str, str], tuple[int, ...]] = {}    # racks holding both types
        self.answers: dict[tuple, object] = {}

    def racks(self, t: str, n: int) -> tuple[int, ...]:
        if (t, n) not in self.holding:
            self.holding[t, n] = tuple(i for i, r in enumerate(self.fleet.racks) if r.free(t) >= n)
            self.pods[t, n] = frozenset(self.fleet.racks[i].pod for i in self.holding[t, n])
        return self.holding[t, n]

    def fused(self, p: str, n_p: int, d: str, n_d: int) -> tuple[int, ...] | None:
        """Racks with room for both pools (one type: for both together)."""
        key = ("fused", p, n_p, d, n_d)
        if key not in self.answers:
            if p == d:
                both = self.racks(p, n_p + n_d)
            else:
                if (p, d) not in self.paired:
                    self.paired[p, d] = tuple(i for i, r in enumerate(self.fleet.racks) if p in r.chips and d in r.chips)
                both = tuple(i for i in self.paired[p, d]
                             if self.fleet.racks[i].free(p) >= n_p and self.fleet.racks[i].free(d) >= n_d)
            self.answers[key] = both or None
        return self.answers[key]

    def scale_out(self, p: str, n_p: int, d: str, n_d: int) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """Each pool's racks, in the pods that have room for both."""
        key = ("out", p, n_p, d, n_d)
        if key not in self.answers:
            racks_p, racks_d = self.racks(p, n_p), self.racks(d, n_d)
            pods = self.pods[p, n_p] & self.pods[d, n_d]
            if not pods:
                self.answers[key] = None
            elif pods == self.pods[p, n_p] == self.pods[d, n_d]:
                self.answers[key] = (racks_p, racks_d)
            else:
                racks = self.fleet.racks
                self.answers[key] = (tuple(i for i in racks_p if racks[i].pod in pods),
                                     tuple(i for i in racks_d if racks[i].pod in pods))
        return self.answers[key]


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
