"""Disaggregated candidates ("splits"): a service with a rate as a prefill pool
and a decode pool, sized by the core for each (prefill type, decode type,
link) the job allows (perf/_pools.pxi).  A split's `pools` are two single-rack
candidates of one chip type each; a fused split puts both on one rack (one
hybrid rack, or one scale-up domain of one type) and its KV cache crosses the
scale-up fabric; a scale-out split puts each pool on a rack of its type, both
in one pod, and the KV cache crosses the pod's network.  Both pools are placed
or neither (racks.Split and everything that takes chips pool by pool).
"""
from __future__ import annotations

import numpy as np

from trnsched.candidates import METRICS, Candidate, Metrics
from trnsched.inputs.fleet import Fleet
from trnsched.inputs.jobs import Job
from trnsched.perf import columns as col
from trnsched.perf.scoring import score_pool_arrays

# Per job: the cheapest and the most frugal (energy) pool pairs kept, per link.  A
# scale-out pool may go on any rack of its type, so its variables span every rack
# group: keeping three of those made the generated 100-job model 30% larger and
# its priority phase twice as slow; fused pairs live on the few racks holding both.
SPLITS_KEPT = {col.FUSED: 3, col.SCALE_OUT: 1}


# What a scale-out split and its fused twin must share for the twin to stand in
# for it: the same pools, drawing the same power (only TTFT and the transfer differ).
TWIN_FIELDS = ("prefill_tp", "prefill_pp", "prefill_replicas", "decode_tp", "decode_pp", "decode_replicas",
               "prefill_power_kw", "decode_power_kw")


ROLES = ("prefill", "decode")     # a split's pools, in order


def split_label(prefill: str, decode: str) -> str:
    """A split's chip type as results show it: prefill type + decode type."""
    return f"{prefill}+{decode}"


def pool_columns(out: dict[str, np.ndarray], prices: tuple[np.ndarray, np.ndarray]) -> tuple[dict, dict, dict]:
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
    for role, price in zip(ROLES, prices):
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
