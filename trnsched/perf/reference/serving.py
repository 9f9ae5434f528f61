"""Inference layouts: replicas of tp x pp chips, the sequences they hold, and the
TTFT, TPOT and throughput they reach at the load the candidate carries
(_serving.pxi).

A replica holds `n` sequences in flight (the job's `batch`, else as many as its
memory, the engine's limit and a TPOT SLO allow), as `m = min(pp, n)`
micro-batches of `n / m`: a pipeline of depth pp has only as many micro-batches
in flight as it has sequences.  `T(b)` is one micro-batch's trip through the
whole model, which is the uninterrupted TPOT.

Load (continuous batching; prefill preempts decode, as a chunked-prefill engine
with prefill priority does):
- no request rate (a throughput run): `n` streams in a closed loop.  Each
  request's prefill (`t_pf`, the replica's pipelined prefill time) runs while the
  others decode, so TPOT = T + (n - 1) t_pf / output and TTFT is the idle TTFT;
  throughput = output / (t_pf + output T / n) per replica.
- a request rate: Poisson arrivals split evenly over the candidate's replicas,
  `lam` each.  Prefill takes `rho = lam t_pf` of the replica's time, so decode
  runs at T(b) / (1 - rho), with b from the sequences in flight (Little:
  lam x the request's time in the replica); prompts queue for prefill as in an
  M/D/1 queue (wait rho t_pf / (2 (1 - rho))).
"""
from __future__ import annotations

import math

from trnsched.perf.columns import (
    AS_PRACTITIONER, BY_LATENCY, BY_SLO, BY_THROUGHPUT, C_BUSY_KW, C_EFF_HBM, C_EFF_NET, C_EFF_PREFILL,
    C_GEMM_W0, C_HBM, C_HBM_BW, C_HOST_KW, C_IDLE_KW, C_LAYER_OVERHEAD, C_MEM_RESERVE, C_PRICE_HR,
    C_REQUEST_OVERHEAD, C_SO_BW, C_SO_LAT, C_SU_BW, C_SU_LAT, J_ACTIVE, J_ATTN_DIM, J_BATCH, J_DENSE,
    J_DURATION_H, J_EXPERTS, J_HIDDEN, J_HINT_DP, J_HINT_PP, J_KV_BYTES, J_KV_DIM, J_KV_HEADS, J_LAYERS,
    J_OFFLINE, J_OUTPUT, J_PARAMS, J_PROMPT, J_RATE, J_SLO_TPOT, J_SLO_TTFT, J_TOP_K, J_WBYTES, MAX_BATCH,
    MEMORY, OK, RATE, SLO_TPOT, SLO_TTFT,
)
from trnsched.perf.constants import LATENCY_SLACK, LOAD_SETTLED, LOAD_STEPS, MEM_BOUND_POWER, SERVICE_TPOT_S
from trnsched.perf.reference.common import (
    INF, Layout, allreduce_time, alltoall_time, arithmetic, gemm_params, pow2_at_least,
)


class Infer:
    """One replica's timings for one (tp, pp).  Every term of T(b) is linear in the
    micro-batch b but the experts a MoE layer reads, so their coefficients are
    worked out once per replica."""

    def __init__(self, job, chip, tp: int, pp: int, per_domain: int) -> None:
        self.job, self.chip, self.tp, self.pp = job, chip, tp, pp
        self.peak, eff = arithmetic(job, chip)
        width = job[J_HIDDEN] / tp
        self.eff = eff * width / (width + chip[C_GEMM_W0])
        su_bw = chip[C_SU_BW] * chip[C_EFF_NET]
        hbm_bw = chip[C_HBM_BW] * chip[C_EFF_HBM]
        crosses = tp * pp > per_domain
        pp_bw = (chip[C_SO_BW] if crosses else chip[C_SU_BW]) * chip[C_EFF_NET]
        pp_lat = chip[C_SO_LAT] if crosses else chip[C_SU_LAT]
        kv_split = min(tp, job[J_KV_HEADS])
        layers, lat, token_bytes = job[J_LAYERS], chip[C_SU_LAT], job[J_HIDDEN] * 2.0
        ctx = job[J_PROMPT] + 0.5 * job[J_OUTPUT]
        # Seconds per sequence of the micro-batch, or fixed, for each term of T(b).
        self.work = gemm_params(job, chip)   # active parameters, weighted by their GEMMs' speed
        self.compute = (2.0 * self.work + 4.0 * layers * ctx * job[J_ATTN_DIM]) / (tp * self.peak * self.eff)
        self.kv = ctx * layers * job[J_KV_DIM] * job[J_KV_BYTES] / kv_split / hbm_bw
        self.dense = job[J_DENSE] * job[J_WBYTES] / tp / hbm_bw
        self.expert = (job[J_PARAMS] - job[J_DENSE]) * job[J_WBYTES] / tp / hbm_bw
        self.spared = math.log(1.0 - job[J_TOP_K] / job[J_EXPERTS]) if job[J_EXPERTS] > 1.0 else 0.0
        # Collectives per forward pass: TP all-reduces (or an all-reduce and two MoE
        # all-to-alls) per layer, and pp - 1 pipeline hops: per token, and latency.
        if job[J_EXPERTS] > 1.0:
            per_token = (allreduce_time(tp, token_bytes, su_bw, 0.0)
                         + 2.0 * alltoall_time(tp, tp, token_bytes, job[J_TOP_K], su_bw, 0.0, su_bw, 0.0))
            fixed = (allreduce_time(tp, 0.0, su_bw, lat)
                     + 2.0 * alltoall_time(tp, tp, 0.0, job[J_TOP_K], su_bw, lat, su_bw, lat))
        else:
            per_token = 2.0 * allreduce_time(tp, token_bytes, su_bw, 0.0)
            fixed = 2.0 * allreduce_time(tp, 0.0, su_bw, lat)
        self.wire = layers * per_token + (pp - 1.0) * token_bytes / pp_bw
        self.fixed = layers * fixed + (pp - 1.0) * pp_lat + layers * chip[C_LAYER_OVERHEAD]

    def reads(self, tokens: float) -> float:
        """Seconds to read the weights `tokens` tokens touch (MoE: the experts they
        route to, an expected share 1 - (1 - k/E)^tokens; dense: all of them)."""
        return self.dense + self.expert * (1.0 - math.exp(tokens * self.spared))

    def trip(self, batch: float) -> tuple[float, float]:
        """T(b): seconds for a micro-batch of `batch` sequences to pass through the
        whole model for one token (the uninterrupted TPOT), and the share of TDP
        above idle it draws: full while compute-bound, MEM_BOUND_POWER while the
        chip only streams weights and KV cache (decode draws well below TDP)."""
        compute = batch * self.compute
        memory = self.reads(batch) + batch * self.kv
        step = max(compute, memory) + batch * self.wire + self.fixed
        return step, (compute + MEM_BOUND_POWER * max(0.0, memory - compute)) / step

    def decode(self, n: float) -> tuple[float, float]:
        """T and busy share with `n` sequences in flight: min(pp, n) micro-batches."""
        return self.trip(n / min(self.pp, max(n, 1.0)))

    def prefill_work(self) -> float:
        """A prompt's FLOPs, with the experts' weighted by their GEMMs' speed."""
        j = self.job
        p = j[J_PROMPT]
        return 2.0 * self.work * p + 2.0 * j[J_LAYERS] * p * p * j[J_ATTN_DIM]

    def ttft(self) -> float:
        """One prompt on an idle replica."""
        p = self.job[J_PROMPT]
        t_compute = self.prefill_work() / (self.tp * self.peak * self.eff * self.chip[C_EFF_PREFILL])
        return max(t_compute, self.reads(p)) + p * self.wire + self.fixed + self.chip[C_REQUEST_OVERHEAD]

    def prefill_time(self) -> float:
        """t_pf: the replica's time per prompt when prompts are batched and pipelined
        through all pp stages (no fixed costs)."""
        return self.prefill_work() / (self.tp * self.pp * self.peak * self.eff * self.chip[C_EFF_PREFILL])

    def closed_loop(self, n: float, t_pf: float, ttft0: float) -> tuple[float, float, float]:
        """(TPOT, TTFT, activity) of n streams in a closed loop: each decode is
        interrupted by the other n - 1 streams' prefills.  Prefill takes
        s = t_pf / (t_pf + output T / n) of the replica's time; a new prompt waits
        for the other streams' prefills as in an M/D/1 queue at their share
        s (n - 1) / n; the chip draws full busy power in prefill and the decode
        step's share otherwise."""
        step, busy = self.decode(n)
        output = self.job[J_OUTPUT]
        share = t_pf / (t_pf + output * step / n)
        others = share * (n - 1.0) / n
        ttft = ttft0 + others * t_pf / (2.0 * (1.0 - others))
        return step + (n - 1.0) * t_pf / output, ttft, share + (1.0 - share) * busy


class Replica:
    """What one inference replica of tensor-parallel degree tp holds and achieves
    on its own.  None of it depends on the candidate's chip count, so the core
    computes it once per job, chip type and domain size and reuses it across
    counts; the load a count puts on each replica is applied in infer_layout."""

    __slots__ = ("tp", "pp", "weights_chip", "kv_seq", "kv_split", "max_batch", "batch", "mem_per_chip",
                 "fits", "ttft0", "ttft", "tpot", "tpot1", "step", "busy", "activity", "t_prefill", "per_replica",
                 "latency", "model")


def replica(job, chip, per_domain: float, tp: float) -> Replica:
    r = Replica()
    r.tp = tp
    usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    weights = job[J_PARAMS] * job[J_WBYTES]
    r.kv_seq = (job[J_PROMPT] + job[J_OUTPUT]) * job[J_LAYERS] * job[J_KV_DIM] * job[J_KV_BYTES]
    r.kv_split = min(tp, job[J_KV_HEADS])
    if job[J_HINT_PP] > 0:
        pp = job[J_HINT_PP]
    else:
        # Per chip: weights/(tp pp) plus the KV cache of at least one sequence.
        room = usable - r.kv_seq / r.kv_split
        pp_need = weights / tp / room if room > 0.0 else INF
        pp = pow2_at_least(pp_need) if pp_need <= job[J_LAYERS] else INF
    r.pp = pp
    stages = min(pp, job[J_LAYERS])
    r.weights_chip = weights / (tp * stages)
    kv_chip = r.kv_seq / (r.kv_split * stages)      # a stage holds its layers' KV for every sequence
    r.max_batch = r.batch = r.ttft0 = r.ttft = r.tpot = r.tpot1 = r.step = r.busy = r.activity = 0.0
    r.t_prefill = r.per_replica = 0.0
    r.latency = 0.0
    r.model = None
    r.fits = False
    r.mem_per_chip = r.weights_chip + kv_chip
    if pp > job[J_LAYERS]:
        return r

    free = usable - r.weights_chip
    r.max_batch = min(float(MAX_BATCH), math.floor(free / kv_chip)) if free > 0.0 else 0.0
    n = job[J_BATCH] if job[J_BATCH] > 0 else max(r.max_batch, 1.0)
    r.batch = n
    r.mem_per_chip = r.weights_chip + n * kv_chip
    r.fits = n <= r.max_batch
    if not r.fits:
        return r

    model = Infer(job, chip, tp, pp, per_domain)
    r.model = model
    r.ttft0 = model.ttft()
    r.t_prefill = model.prefill_time()
    r.tpot1 = model.trip(1.0)[0]                     # the fastest token: one sequence, no load
    r.latency = r.ttft0 + job[J_OUTPUT] * r.tpot1
    tpot_cap, ttft_cap = latency_caps(job)
    if job[J_BATCH] <= 0 and not within(model, n, r, tpot_cap, ttft_cap):
        # The most sequences in flight whose TPOT and TTFT stay within the caps
        # (both grow with n); one sequence if none does.
        lo, hi = 1.0, n
        if within(model, lo, r, tpot_cap, ttft_cap):
            while hi - lo > 1.0:
                mid = math.floor(0.5 * (lo + hi))
                if within(model, mid, r, tpot_cap, ttft_cap):
                    lo = mid
                else:
                    hi = mid
            n = lo
        else:
            n = 1.0
    r.batch = n
    r.mem_per_chip = r.weights_chip + n * kv_chip
    r.step, r.busy = model.decode(n)
    r.tpot, r.ttft, r.activity = model.closed_loop(n, r.t_prefill, r.ttft0)
    r.per_replica = job[J_OUTPUT] / (r.t_prefill + job[J_OUTPUT] * r.step / n)
    return r


def latency_caps(job) -> tuple[float, float]:
    """(TPOT, TTFT) limits on the sequences a replica takes in: the job's SLOs;
    for a service with neither an SLO nor a batch, a practitioner's default TPOT
    (SERVICE_TPOT_S, MLPerf's server-scenario limit); none for offline work."""
    if ranking(job) == AS_PRACTITIONER:
        return SERVICE_TPOT_S, INF
    return job[J_SLO_TPOT], job[J_SLO_TTFT]


def within(model: Infer, n: float, r: Replica, tpot_cap: float, ttft_cap: float) -> bool:
    tpot, ttft, _ = model.closed_loop(n, r.t_prefill, r.ttft0)
    return tpot <= tpot_cap and ttft <= ttft_cap


def under_load(job, rep: Replica, lam: float) -> tuple[float, float, float, bool]:
    """(TTFT, TPOT, activity, holds) of one replica taking `lam` requests/s of
    Poisson arrivals; it holds them where prefill leaves it time and the sequences
    in flight fit what it holds.  Activity: prefill's share rho at full busy power,
    decode the rest of the time while any sequence is in flight (Little's count,
    at most 1) at the decode step's share.

    Sequences in flight n solve g(n) = lam (TTFT + output T(n) / (1 - rho)) - n = 0
    (Little's law).  g(1) >= 0, and the replica holds the load exactly when
    g(capacity) <= 0; between the two, regula falsi (Illinois) finds the root to
    LOAD_SETTLED in a few steps where plain iteration crawls near saturation."""
    rho = lam * rep.t_prefill
    if rho >= 1.0:
        return INF, INF, 1.0, False
    ttft = rep.ttft0 + rho * rep.t_prefill / (2.0 * (1.0 - rho))
    stretch = lam * job[J_OUTPUT] / (1.0 - rho)

    def g(n: float) -> float:
        return max(1.0, lam * ttft + stretch * rep.model.decode(n)[0]) - n

    hi, g_hi = rep.batch, g(rep.batch)
    if g_hi > 0.0:
        return ttft, rep.step / (1.0 - rho), rho + (1.0 - rho) * rep.busy, False
    lo, g_lo = 1.0, g(1.0)
    n, side = lo, 0
    if g_lo > LOAD_SETTLED:
        for _ in range(LOAD_STEPS):
            n = hi - g_hi * (hi - lo) / (g_hi - g_lo)
            g_n = g(n)
            if abs(g_n) <= LOAD_SETTLED * n or hi - lo <= LOAD_SETTLED * hi:
                break
            if g_n > 0.0:
                lo, g_lo = n, g_n
                if side > 0:
                    g_hi *= 0.5
                side = 1
            else:
                hi, g_hi = n, g_n
                if side < 0:
                    g_lo *= 0.5
                side = -1
    step, busy = rep.model.decode(n)
    tpot = step / (1.0 - rho)
    occupied = min(1.0, lam * (ttft + job[J_OUTPUT] * tpot))
    return ttft, tpot, rho + (1.0 - rho) * occupied * busy, True


def infer_layout(job, chip, n_chips: float, rep: Replica) -> Layout:
    """An inference layout: as many replicas as fit in the chips.  Without a
    request rate the replicas run saturated and the layout is final; with one it
    is final where the chips fall short of the replicas the rate needs, and
    otherwise provisional (OK) until apply_load() puts the rate on it."""
    out = Layout()
    tp, pp = rep.tp, rep.pp
    out.tp = tp
    if pp > job[J_LAYERS] or tp * pp > n_chips:
        out.reason = MEMORY
        out.pp = min(pp, job[J_LAYERS])
        out.mem_per_chip = rep.mem_per_chip
        return out
    replicas = n_chips // (tp * pp)
    if job[J_HINT_DP] > 0:
        if job[J_HINT_DP] > replicas:
            return out
        replicas = job[J_HINT_DP]
    out.pp, out.dp, out.replicas = pp, replicas, replicas
    out.max_batch, out.batch, out.mem_per_chip = rep.max_batch, rep.batch, rep.mem_per_chip
    if not rep.fits:
        out.reason = MEMORY
        return out

    total = replicas * rep.per_replica
    out.tokens_per_s = total
    out.latency_s = rep.latency
    need = job[J_RATE] * job[J_OUTPUT] / rep.per_replica       # replicas the request rate needs
    out.replicas_needed = math.ceil(need)
    out.duration_h = job[J_DURATION_H]
    out.ttft_s, out.tpot_s = rep.ttft, rep.tpot                 # saturated; apply_load() replaces them
    settle(job, chip, n_chips, out, rep.activity)
    if job[J_RATE] > 0.0 and need > replicas:
        # Short of replicas for the rate: an SLO missed even by a lone request is
        # the first thing wrong, else the rate.
        out.ttft_s, out.tpot_s = rep.ttft0, rep.tpot1
        if out.ttft_s > job[J_SLO_TTFT] or out.tpot_s > job[J_SLO_TPOT]:
            missed(job, out)
        else:
            out.reason, out.score = RATE, total
    elif job[J_RATE] <= 0.0 and (out.ttft_s > job[J_SLO_TTFT] or out.tpot_s > job[J_SLO_TPOT]):
        missed(job, out)
    else:
        out.reason = OK
        out.score = -(out.ttft_s + job[J_OUTPUT] * out.tpot_s) if ranking(job) == BY_LATENCY else total
    return out


def apply_load(job, chip, n_chips: float, rep: Replica, out: Layout) -> None:
    """Put the job's request rate, split over the layout's replicas, on a
    provisional layout: TTFT, TPOT and power at that load, and its SLOs checked."""
    out.ttft_s, out.tpot_s, activity, holds = under_load(job, rep, job[J_RATE] / out.replicas)
    settle(job, chip, n_chips, out, activity)
    if out.ttft_s > job[J_SLO_TTFT] or out.tpot_s > job[J_SLO_TPOT]:
        missed(job, out)
    elif not holds:
        out.reason, out.score = RATE, out.tokens_per_s
    elif ranking(job) == BY_LATENCY:
        out.score = -(out.ttft_s + job[J_OUTPUT] * out.tpot_s)


def settle(job, chip, n_chips: float, out: Layout, activity: float) -> None:
    """Power, energy and cost of a layout whose replicas' chips draw `activity` of
    their busy power (TDP above idle); chips outside the replicas idle."""
    busy_chips = out.replicas * out.tp * out.pp
    out.power_kw = (n_chips * (chip[C_IDLE_KW] + chip[C_HOST_KW])
                    + busy_chips * chip[C_BUSY_KW] * activity)
    out.energy_kwh = out.power_kw * out.duration_h
    out.cost_usd = n_chips * chip[C_PRICE_HR] * out.duration_h


def missed(job, out: Layout) -> None:
    """An SLO missed: layouts that miss by less rank higher."""
    out.reason = SLO_TTFT if out.ttft_s > job[J_SLO_TTFT] else SLO_TPOT
    out.score = -max(out.ttft_s / job[J_SLO_TTFT], out.tpot_s / job[J_SLO_TPOT])


def ranking(job) -> int:
    """How the job's layouts compete: by latency when its batch is fixed; by
    throughput within its SLOs when it has one, or when it is offline batch work;
    otherwise as a practitioner would (choose())."""
    if job[J_BATCH] > 0:
        return BY_LATENCY
    if job[J_SLO_TTFT] < INF or job[J_SLO_TPOT] < INF:
        return BY_SLO
    if job[J_OFFLINE] > 0:
        return BY_THROUGHPUT
    return AS_PRACTITIONER


def choose(job, chip, n_chips: float, layouts: list[Layout], reps: list[Replica]) -> Layout:
    """The best of a candidate's inference layouts (one per tp, smallest tp first).

    The layout that got furthest through the checks wins, then the best score
    (ranking()).  A practitioner serving with no batch and no SLO given takes
    the most throughput among layouts whose lone request is no slower than
    LATENCY_SLACK times that of the best tensor-parallel-only layout that fits
    the chips and the rate (the best such layout overall if none fits without a
    pipeline), rather than the deepest pipeline, or the narrowest replica, that
    fits.

    With a request rate, the load changes latency but not throughput: layouts
    that compete on throughput take it in order, best first, and the first that
    still holds it wins; only latency ranking needs every layout under load."""
    viable = [k for k, c in enumerate(layouts) if c.reason == OK]   # provisional where a rate is to come
    bound = INF
    if ranking(job) == AS_PRACTITIONER and viable:
        flat = [k for k in viable if layouts[k].pp == 1.0] or viable
        bound = LATENCY_SLACK * min(layouts[k].latency_s for k in flat)
    if job[J_RATE] > 0.0:
        if ranking(job) != BY_LATENCY:
            contenders = [k for k in viable if layouts[k].latency_s <= bound]
            for k in sorted(contenders, key=lambda k: (-layouts[k].score, layouts[k].mem_per_chip, k)):
                apply_load(job, chip, n_chips, reps[k], layouts[k])
                if layouts[k].reason == OK:
                    return layouts[k]
                viable.remove(k)
        for k in viable:
            apply_load(job, chip, n_chips, reps[k], layouts[k])
    best = Layout()
    for cand in layouts:
        if cand.reason == OK and cand.latency_s <= bound and cand.beats(best):
            best = cand
    if best.reason != OK:
        for cand in layouts:
            if cand.beats(best):
                best = cand
    return best
