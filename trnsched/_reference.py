"""The performance model in plain Python: the readable specification.

`_core.pyx` computes exactly these formulas over whole arrays of candidates;
`tests/test_core.py` holds the two to a relative tolerance of 1e-9.  The
physics and the sources behind each term are written up in docs/MODEL.md.

One candidate = one job on `chips` chips of one type spread over `domains`
scale-up domains.  For each tensor-parallel degree the model derives the
rest of the layout (pipeline depth from memory, data/expert parallel from
what is left), evaluates it, and keeps the layout that got furthest through
the checks (memory, batch, SLOs, rate, deadline) and, among those, scores best.
"""
from __future__ import annotations

import math

from trnsched._columns import (
    ACT_BYTES_FULL, ACT_BYTES_RECOMPUTE, BATCH, C_DOMAIN, C_EFF_BF16, C_EFF_FP8, C_EFF_HBM,
    C_EFF_NET, C_EFF_PREFILL, C_GEMM_W0, C_HBM, C_HBM_BW, C_IDLE, C_LAYER_OVERHEAD, C_MEM_RESERVE,
    C_PEAK_BF16, C_PEAK_FP8, C_PRICE_HR, C_PUE, C_REQUEST_OVERHEAD, C_SO_BW, C_SO_LAT, C_SU_BW,
    C_SU_LAT, C_TDP, DEADLINE, DP_OVERLAP, J_ACTIVE, J_ARRIVAL_H, J_ATTN_DIM, J_BATCH, J_BATCH_SEQS,
    J_DEADLINE_H, J_DENSE, J_DURATION_H, J_EXPERTS, J_FP8, J_HEADS, J_HIDDEN, J_HINT_DP, J_HINT_EP,
    J_HINT_PP, J_HINT_TP, J_KIND, J_KV_DIM, J_KV_HEADS, J_LAYERS, J_OUTPUT, J_PARAMS, J_PROMPT,
    J_RATE, J_SEQ_LEN, J_SLO_TPOT, J_SLO_TTFT, J_TOKENS, J_TOP_K, MAX_BATCH, MEMORY, NO_LAYOUT, OK,
    OPTIMIZER_BYTES, OUTPUTS, RATE, RECOMPUTE_FLOPS, SLO_TPOT, SLO_TTFT, STATE_BYTES, TP_OPTIONS,
)

INF = math.inf


def progress(reason: int) -> int:
    """How far a layout got through the checks: OK beats every failure."""
    return 99 if reason == OK else reason


def pow2_at_least(x: float) -> float:
    """Smallest power of two >= x (callers keep x small and finite)."""
    p = 1.0
    while p < x:
        p *= 2.0
    return p


def allreduce_time(chips: float, nbytes: float, bw: float, lat: float) -> float:
    """Ring all-reduce (reduce-scatter + all-gather) with tree-like latency."""
    if chips <= 1:
        return 0.0
    return 2.0 * (chips - 1.0) / chips * nbytes / bw + 2.0 * math.log2(chips) * lat


def alltoall_time(group: float, in_domain: float, nbytes: float, su_bw: float, su_lat: float,
                  so_bw: float, so_lat: float) -> float:
    """All-to-all of `nbytes` per chip over `group` peers, `in_domain` of them on the
    scale-up fabric.  One message per peer, each paying that fabric's latency: this is
    where a large low-latency domain wins over crossing the scale-out network."""
    if group <= 1:
        return 0.0
    out = group - in_domain
    return (nbytes * (in_domain - 1.0) / group / su_bw + nbytes * out / group / so_bw
            + (in_domain - 1.0) * su_lat + out * so_lat)


def experts_touched(experts: float, top_k: float, tokens: float) -> float:
    """Expected share of routed experts a layer reads for `tokens` tokens."""
    if experts <= 1.0:
        return 1.0
    return 1.0 - (1.0 - top_k / experts) ** tokens


class Layout:
    """One evaluated layout; the fields mirror OUTPUTS."""

    __slots__ = OUTPUTS + ("score",)

    def __init__(self) -> None:
        for name in OUTPUTS:
            setattr(self, name, 0.0)
        self.reason = NO_LAYOUT
        self.score = -INF
        self.mem_per_chip = INF

    def beats(self, other: "Layout") -> bool:
        a, b = progress(self.reason), progress(other.reason)
        if a != b:
            return a > b
        if self.score != other.score:
            return self.score > other.score
        return self.mem_per_chip < other.mem_per_chip


def _train(job, chip, n: int, per_domain: int, tp: int, recompute: int) -> Layout:
    out = Layout()
    out.tp, out.recompute = tp, recompute
    layers, hidden = job[J_LAYERS], job[J_HIDDEN]
    params, dense = job[J_PARAMS], job[J_DENSE]
    expert = params - dense
    experts = job[J_EXPERTS]
    usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])

    act_per_token_layer = (ACT_BYTES_RECOMPUTE if recompute else ACT_BYTES_FULL) * hidden / tp
    act = act_per_token_layer * job[J_SEQ_LEN] * layers
    fixed = OPTIMIZER_BYTES * params / n + act   # optimizer state is sharded over every chip
    # Weights+grads per chip: max(4(dense + expert/E)/(tp pp), 4 dense/(tp pp) + 4 expert/n),
    # depending on whether expert parallelism is capped by the expert count or by dp.
    if job[J_HINT_PP] > 0:
        pp = job[J_HINT_PP]
    else:
        room = usable - fixed
        room_ep = room - STATE_BYTES * expert / n
        if room <= 0.0 or room_ep <= 0.0:
            pp_need = INF
        else:
            pp_need = max(STATE_BYTES * (dense + expert / experts) / tp / room,
                          STATE_BYTES * dense / tp / room_ep, 1.0)
        pp = pow2_at_least(pp_need) if pp_need <= layers else INF
    if pp > layers or tp * pp > n:
        # The smallest pipeline that would fit is deeper than the model or the chips allow.
        out.reason = MEMORY
        out.pp = min(pp, layers)
        out.mem_per_chip = fixed + STATE_BYTES * (dense + expert / experts) / (tp * out.pp)
        return out
    dp = n // (tp * pp)
    if job[J_HINT_DP] > 0:
        if job[J_HINT_DP] > dp:
            return out
        dp = int(job[J_HINT_DP])
    ep = min(experts, dp) if job[J_HINT_EP] <= 0 else job[J_HINT_EP]
    if ep > dp or ep > experts:
        return out
    used = tp * pp * dp
    out.pp, out.dp, out.ep = pp, dp, ep

    params_per_chip = dense / (tp * pp) + expert / (tp * pp * ep)
    mem = STATE_BYTES * params_per_chip + OPTIMIZER_BYTES * params / used + act
    out.mem_per_chip = mem
    if mem > usable:
        out.reason = MEMORY
        return out
    micro_batches = job[J_BATCH_SEQS] / dp      # micro-batch = one sequence
    if micro_batches < 1.0:
        out.reason = BATCH
        return out

    fp8 = job[J_FP8] > 0.0
    peak = chip[C_PEAK_FP8] if fp8 else chip[C_PEAK_BF16]
    width = hidden / tp
    eff = (chip[C_EFF_FP8] if fp8 else chip[C_EFF_BF16]) * width / (width + chip[C_GEMM_W0])
    seq = job[J_SEQ_LEN]
    tokens_step = job[J_BATCH_SEQS] * seq
    model_flops = tokens_step * (6.0 * job[J_ACTIVE] + 12.0 * layers * seq * job[J_ATTN_DIM])
    t_compute = model_flops * (RECOMPUTE_FLOPS if recompute else 1.0) / (used * peak * eff)
    t_bubble = t_compute * (pp - 1.0) / micro_batches

    su_bw = chip[C_SU_BW] * chip[C_EFF_NET]
    so_bw = chip[C_SO_BW] * chip[C_EFF_NET]
    su_lat, so_lat = chip[C_SU_LAT], chip[C_SO_LAT]
    passes = micro_batches + pp - 1.0           # micro-batch slots a stage goes through
    layer_passes = passes * layers / pp
    collectives = 6.0 if recompute else 4.0     # fwd 2 + bwd 2 (+ recomputed fwd 2)

    t_tp = layer_passes * collectives * allreduce_time(tp, seq * hidden * 2.0, su_bw, su_lat)

    t_pp = 0.0
    if pp > 1:
        crosses = tp * pp > per_domain
        bw, lat = (so_bw, so_lat) if crosses else (su_bw, su_lat)
        t_pp = 2.0 * passes * (seq * hidden * 2.0 / tp / bw + lat)

    # Gradient reduction: reduce-scatter inside each domain, then across domains
    # on the shard each chip owns (hierarchical, as NCCL and Neuron do).
    grad_bytes = 2.0 * params_per_chip
    dp_in = max(1.0, min(dp, per_domain // (tp * pp)))
    dp_out = math.ceil(dp / dp_in)
    t_dp = (allreduce_time(dp_in, grad_bytes, su_bw, su_lat)
            + allreduce_time(dp_out, grad_bytes / dp_in, so_bw, so_lat))
    t_dp_exposed = max(0.0, t_dp - DP_OVERLAP * t_compute)

    t_ep = 0.0
    if ep > 1:
        ep_in = max(1.0, min(ep, dp_in))
        a2a_bytes = seq / tp * job[J_TOP_K] * hidden * 2.0
        t_ep = layer_passes * collectives * alltoall_time(ep, ep_in, a2a_bytes, su_bw, su_lat,
                                                          so_bw, so_lat)

    step = t_compute + t_bubble + t_tp + t_pp + t_dp_exposed + t_ep
    out.step_time_s = step
    out.tokens_per_s = tokens_step / step
    out.mfu = model_flops / (step * n * peak)
    out.duration_h = job[J_TOKENS] / out.tokens_per_s / 3600.0
    out.score = -step
    activity = t_compute / step
    out.power_kw = n * (chip[C_IDLE] + (chip[C_TDP] - chip[C_IDLE]) * activity) * chip[C_PUE] / 1000.0
    out.energy_kwh = out.power_kw * out.duration_h
    out.cost_usd = n * chip[C_PRICE_HR] * out.duration_h
    if job[J_ARRIVAL_H] + out.duration_h > job[J_DEADLINE_H]:
        out.reason = DEADLINE
        return out
    out.reason = OK
    return out


class _Infer:
    """Per-replica inference timings for one (tp, pp); batch is the only free variable."""

    def __init__(self, job, chip, tp: int, pp: int, per_domain: int) -> None:
        self.job, self.chip, self.tp, self.pp = job, chip, tp, pp
        fp8 = job[J_FP8] > 0.0
        self.wbytes = 1.0 if fp8 else 2.0
        self.peak = chip[C_PEAK_FP8] if fp8 else chip[C_PEAK_BF16]
        width = job[J_HIDDEN] / tp
        self.eff = (chip[C_EFF_FP8] if fp8 else chip[C_EFF_BF16]) * width / (width + chip[C_GEMM_W0])
        self.su_bw = chip[C_SU_BW] * chip[C_EFF_NET]
        self.hbm_bw = chip[C_HBM_BW] * chip[C_EFF_HBM]
        crosses = tp * pp > per_domain
        self.pp_bw = (chip[C_SO_BW] if crosses else chip[C_SU_BW]) * chip[C_EFF_NET]
        self.pp_lat = chip[C_SO_LAT] if crosses else chip[C_SU_LAT]
        self.kv_split = min(tp, job[J_KV_HEADS])

    def _weights_read(self, tokens: float) -> float:
        j = self.job
        expert = j[J_PARAMS] - j[J_DENSE]
        return (j[J_DENSE] + expert * experts_touched(j[J_EXPERTS], j[J_TOP_K], tokens)) * self.wbytes

    def _collectives(self, tokens: float) -> float:
        """Per forward pass: TP all-reduces (or MoE all-to-alls) per layer, pipeline hops."""
        j, tp = self.job, self.tp
        nbytes = tokens * j[J_HIDDEN] * 2.0
        lat = self.chip[C_SU_LAT]
        if j[J_EXPERTS] > 1.0:
            per_layer = (allreduce_time(tp, nbytes, self.su_bw, lat)
                         + 2.0 * alltoall_time(tp, tp, nbytes * j[J_TOP_K], self.su_bw, lat,
                                               self.su_bw, lat))
        else:
            per_layer = 2.0 * allreduce_time(tp, nbytes, self.su_bw, lat)
        hops = (self.pp - 1.0) * (nbytes / self.pp_bw + self.pp_lat)
        return j[J_LAYERS] * per_layer + hops

    def tpot(self, batch: float) -> tuple[float, float]:
        """Seconds per decode step for `batch` sequences, and the busy share of it."""
        j = self.job
        ctx = j[J_PROMPT] + 0.5 * j[J_OUTPUT]
        flops = batch * (2.0 * j[J_ACTIVE] + 4.0 * j[J_LAYERS] * ctx * j[J_ATTN_DIM])
        t_compute = flops / (self.tp * self.peak * self.eff)
        kv = batch * ctx * j[J_LAYERS] * j[J_KV_DIM] * self.wbytes / self.kv_split
        t_memory = (self._weights_read(batch) / self.tp + kv) / self.hbm_bw
        busy = max(t_compute, t_memory)
        step = busy + self._collectives(batch) + j[J_LAYERS] * self.chip[C_LAYER_OVERHEAD]
        return step, busy / step

    def prefill_flops(self) -> float:
        j = self.job
        p = j[J_PROMPT]
        return 2.0 * j[J_ACTIVE] * p + 2.0 * j[J_LAYERS] * p * p * j[J_ATTN_DIM]

    def ttft(self) -> float:
        j = self.job
        p = j[J_PROMPT]
        t_compute = self.prefill_flops() / (self.tp * self.peak * self.eff * self.chip[C_EFF_PREFILL])
        t_memory = self._weights_read(p) / self.tp / self.hbm_bw
        return (max(t_compute, t_memory) + self._collectives(p)
                + j[J_LAYERS] * self.chip[C_LAYER_OVERHEAD] + self.chip[C_REQUEST_OVERHEAD])

    def throughput(self, batch: float, step: float) -> float:
        """Output tokens/s of one replica: pp micro-batches of `batch` decode while
        prompts are prefilled in between (prefill batched, so no fixed costs)."""
        j = self.job
        t_prefill = self.prefill_flops() / (self.tp * self.pp * self.peak * self.eff
                                            * self.chip[C_EFF_PREFILL])
        return 1.0 / (step / (self.pp * batch) + t_prefill / j[J_OUTPUT])


def _infer(job, chip, n: int, per_domain: int, tp: int) -> Layout:
    out = Layout()
    out.tp = tp
    usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    wbytes = 1.0 if job[J_FP8] > 0.0 else 2.0
    weights = job[J_PARAMS] * wbytes
    kv_seq = (job[J_PROMPT] + job[J_OUTPUT]) * job[J_LAYERS] * job[J_KV_DIM] * wbytes
    kv_split = min(tp, job[J_KV_HEADS])
    if job[J_HINT_PP] > 0:
        pp = job[J_HINT_PP]
    else:
        # Per chip: weights/(tp pp) plus the KV cache of at least one sequence.
        room = usable - kv_seq / kv_split
        pp_need = weights / tp / room if room > 0.0 else INF
        pp = pow2_at_least(pp_need) if pp_need <= job[J_LAYERS] else INF
    if pp > job[J_LAYERS] or tp * pp > n:
        out.reason = MEMORY
        out.pp = min(pp, job[J_LAYERS])
        out.mem_per_chip = weights / (tp * out.pp) + kv_seq / kv_split
        return out
    replicas = n // (tp * pp)
    if job[J_HINT_DP] > 0:
        if job[J_HINT_DP] > replicas:
            return out
        replicas = int(job[J_HINT_DP])
    out.pp, out.dp, out.replicas = pp, replicas, replicas

    free = usable - weights / (tp * pp)
    max_batch = min(float(MAX_BATCH), math.floor(free * kv_split / kv_seq)) if free > 0.0 else 0.0
    out.max_batch = max_batch
    wanted = job[J_BATCH] if job[J_BATCH] > 0 else max(max_batch, 1.0)
    out.batch = wanted
    out.mem_per_chip = weights / (tp * pp) + wanted * kv_seq / kv_split
    if wanted > max_batch:
        out.reason = MEMORY
        return out

    model = _Infer(job, chip, tp, pp, per_domain)
    ttft = model.ttft()
    step, busy = model.tpot(wanted)
    slo_tpot = job[J_SLO_TPOT]
    if job[J_BATCH] <= 0 and step > slo_tpot:
        # Largest batch that still meets the TPOT SLO (TPOT grows with batch).
        lo, hi = 1.0, wanted
        if model.tpot(lo)[0] <= slo_tpot:
            while hi - lo > 1.0:
                mid = math.floor(0.5 * (lo + hi))
                if model.tpot(mid)[0] <= slo_tpot:
                    lo = mid
                else:
                    hi = mid
            wanted = lo
        else:
            wanted = 1.0
        step, busy = model.tpot(wanted)
    out.batch = wanted
    out.ttft_s, out.tpot_s = ttft, step
    per_replica = model.throughput(wanted, step)
    total = replicas * per_replica
    out.tokens_per_s = total
    demand = job[J_RATE] * job[J_OUTPUT]
    out.replicas_needed = math.ceil(demand / per_replica)
    load = min(1.0, demand / total) if demand > 0.0 else 1.0
    out.duration_h = job[J_DURATION_H]
    activity = load * busy
    out.power_kw = n * (chip[C_IDLE] + (chip[C_TDP] - chip[C_IDLE]) * activity) * chip[C_PUE] / 1000.0
    out.energy_kwh = out.power_kw * out.duration_h
    out.cost_usd = n * chip[C_PRICE_HR] * out.duration_h
    excess = max(ttft / job[J_SLO_TTFT], step / slo_tpot)
    if ttft > job[J_SLO_TTFT]:
        out.reason, out.score = SLO_TTFT, -excess
    elif step > slo_tpot:
        out.reason, out.score = SLO_TPOT, -excess
    elif total < demand:
        out.reason, out.score = RATE, total
    else:
        out.reason, out.score = OK, total
    return out


def score_one(job, chip, chips: int, domains: int) -> Layout:
    """Best layout for one job (a job-table row) on one chip-table row.

    Tensor-parallel degrees are tried in increasing order; training falls back to
    full activation recompute only when the plain layout does not fit.  The search
    stops at the first degree that is feasible but slower than the best so far:
    past that point collectives only grow.
    """
    best = Layout()
    if chips < 1 or domains < 1:
        return best
    per_domain = min(chip[C_DOMAIN], math.ceil(chips / domains))
    hint_tp = job[J_HINT_TP]
    tp = 1.0
    for _ in TP_OPTIONS:
        if tp > per_domain or tp > chips or tp > job[J_HEADS]:
            break
        if hint_tp <= 0 or tp == hint_tp:
            if job[J_KIND] == 0:
                cand = _train(job, chip, chips, per_domain, tp, 0)
                if cand.reason == MEMORY:
                    again = _train(job, chip, chips, per_domain, tp, 1)
                    if again.beats(cand):
                        cand = again
            else:
                cand = _infer(job, chip, chips, per_domain, tp)
            if cand.beats(best):
                best = cand
            elif best.reason == OK and cand.reason == OK:
                break
        tp *= 2.0
    best.feasible = 1 if best.reason == OK else 0
    return best


def score(job_table, chip_table, job_index, chip_index, chips, domains) -> dict:
    """Score every candidate; returns {output name: list} in OUTPUTS order."""
    results = {name: [] for name in OUTPUTS}
    for i in range(len(job_index)):
        best = score_one(job_table[job_index[i]], chip_table[chip_index[i]],
                         int(chips[i]), int(domains[i]))
        for name in OUTPUTS:
            results[name].append(getattr(best, name))
    return results
