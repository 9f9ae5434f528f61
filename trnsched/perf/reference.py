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

from trnsched.perf.columns import (
    BATCH, C_BUSY_KW, C_DOMAIN, C_EFF_BF16, C_EFF_FP8, C_EFF_HBM, C_EFF_NET, C_EFF_PREFILL, C_GEMM_W0, C_HBM,
    C_HBM_BW, C_IDLE_KW, C_LAYER_OVERHEAD, C_MEM_RESERVE, C_PEAK_BF16, C_PEAK_FP8, C_PRICE_HR,
    C_REQUEST_OVERHEAD, C_SO_BW, C_SO_LAT, C_SU_BW, C_SU_LAT, DEADLINE, J_ACTIVE, J_ARRIVAL_H, J_ATTN_DIM,
    J_BATCH, J_BATCH_SEQS, J_DEADLINE_H, J_DENSE, J_DURATION_H, J_EXPERTS, J_FP8, J_HEADS, J_HIDDEN,
    J_HINT_DP, J_HINT_EP, J_HINT_PP, J_HINT_TP, J_KIND, J_KV_DIM, J_KV_HEADS, J_LAYERS, J_OUTPUT, J_PARAMS,
    J_PROMPT, J_RATE, J_SEQ_LEN, J_SLO_TPOT, J_SLO_TTFT, J_TOKENS, J_TOP_K, MAX_BATCH, MEMORY, NO_LAYOUT, OK,
    OUTPUTS, RATE, SLO_TPOT, SLO_TTFT, TP_OPTIONS, progress,
)
from trnsched.perf.constants import (
    ACT_BYTES_FULL, ACT_BYTES_RECOMPUTE, CHUNK_LAYERS_MIN, DP_OVERLAP, OPTIMIZER_BYTES, RECOMPUTE_FLOPS,
    STATE_BYTES, VIRTUAL_MAX,
)

INF = math.inf


def rounds(chips: float) -> float:
    """Doubling rounds to reach `chips` peers: ceil(log2(chips))."""
    k, p = 0.0, 1.0
    while p < chips:
        p *= 2.0
        k += 1.0
    return k


def pow2_at_most(x: float) -> float:
    """Largest power of two <= x (x >= 1)."""
    p = 1.0
    while p * 2.0 <= x:
        p *= 2.0
    return p


def pow2_at_least(x: float) -> float:
    """Smallest power of two >= x (callers keep x small and finite)."""
    p = 1.0
    while p < x:
        p *= 2.0
    return p


def allreduce_time(chips: float, nbytes: float, bw: float, lat: float) -> float:
    """Ring all-reduce (reduce-scatter + all-gather) bandwidth term; latency of a
    tree or switch reduction: one message per doubling round, both phases."""
    if chips <= 1:
        return 0.0
    return 2.0 * (chips - 1.0) / chips * nbytes / bw + 2.0 * rounds(chips) * lat


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


def memory_floor(job) -> float:
    """Bytes the job needs across all its chips at the very least: training state
    (weights, gradients, optimizer) or inference weights, activations and KV aside."""
    if job[J_KIND] == 0:
        return (STATE_BYTES + OPTIMIZER_BYTES) * job[J_PARAMS]
    return job[J_PARAMS] * (1.0 if job[J_FP8] > 0.0 else 2.0)


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


class TrainSetup:
    """The parts of a training layout fixed by job, chip type, tp and recompute:
    the core computes them once and reuses them across chip counts."""

    __slots__ = ("tp", "recompute", "act", "act_full", "act_min", "state_all", "state_dense",
                 "model_flops", "peak", "compute_work", "tp_allreduce", "hop_su", "hop_so", "a2a_bytes",
                 "hours_per_step")


def train_setup(job, chip, tp: float, recompute: int) -> TrainSetup:
    s = TrainSetup()
    s.tp, s.recompute = tp, recompute
    layers, hidden, seq = job[J_LAYERS], job[J_HIDDEN], job[J_SEQ_LEN]
    dense = job[J_DENSE]
    expert = job[J_PARAMS] - dense
    # Activations held per chip: every layer's for one sequence (1F1B keeps pp
    # micro-batches of L/pp layers in flight), all of it or only the layer inputs.
    s.act_full = ACT_BYTES_FULL * hidden / tp * seq * layers
    s.act_min = ACT_BYTES_RECOMPUTE * hidden / tp * seq * layers
    s.act = s.act_min if recompute else s.act_full   # what the pipeline depth is sized for
    # Weights+grads per chip before pipelining, with experts fully sharded or not at all.
    s.state_all = STATE_BYTES * (dense + expert / job[J_EXPERTS]) / tp
    s.state_dense = STATE_BYTES * dense / tp
    fp8 = job[J_FP8] > 0.0
    s.peak = chip[C_PEAK_FP8] if fp8 else chip[C_PEAK_BF16]
    width = hidden / tp
    eff = (chip[C_EFF_FP8] if fp8 else chip[C_EFF_BF16]) * width / (width + chip[C_GEMM_W0])
    s.model_flops = job[J_BATCH_SEQS] * seq * (6.0 * job[J_ACTIVE] + 12.0 * layers * seq * job[J_ATTN_DIM])
    # Seconds of compute per step on one chip, before recompute; divided by the chips used.
    s.compute_work = s.model_flops / (s.peak * eff)
    su_bw = chip[C_SU_BW] * chip[C_EFF_NET]
    so_bw = chip[C_SO_BW] * chip[C_EFF_NET]
    s.tp_allreduce = allreduce_time(tp, seq * hidden * 2.0, su_bw, chip[C_SU_LAT])
    s.hop_su = seq * hidden * 2.0 / tp / su_bw + chip[C_SU_LAT]
    s.hop_so = seq * hidden * 2.0 / tp / so_bw + chip[C_SO_LAT]
    s.a2a_bytes = seq / tp * job[J_TOP_K] * hidden * 2.0
    s.hours_per_step = job[J_TOKENS] / (job[J_BATCH_SEQS] * seq) / 3600.0
    return s


def _train(job, chip, n: float, per_domain: float, setup: TrainSetup) -> Layout:
    out = Layout()
    tp = setup.tp
    out.tp = tp
    layers, params, experts = job[J_LAYERS], job[J_PARAMS], job[J_EXPERTS]
    expert = params - job[J_DENSE]
    usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])

    fixed = OPTIMIZER_BYTES * params / n + setup.act   # optimizer state is sharded over every chip
    if job[J_HINT_PP] > 0:
        pp = job[J_HINT_PP]
    else:
        # Weights+grads per chip: max(state_all/pp, state_dense/pp + 4 expert/n), as
        # expert parallelism is capped by the expert count or by data parallelism.
        room = usable - fixed
        room_ep = room - STATE_BYTES * expert / n
        if room <= 0.0 or room_ep <= 0.0:
            pp_need = INF
        else:
            pp_need = max(setup.state_all / room, setup.state_dense / room_ep, 1.0)
        pp = pow2_at_least(pp_need) if pp_need <= layers else INF
    if pp > layers or tp * pp > n:
        # The smallest pipeline that would fit is deeper than the model or the chips allow.
        out.reason = MEMORY
        out.pp = min(pp, layers)
        out.mem_per_chip = fixed + setup.state_all / out.pp
        return out
    dp = math.floor(n / (tp * pp))
    if job[J_HINT_DP] > 0:
        if job[J_HINT_DP] > dp:
            return out
        dp = job[J_HINT_DP]
    used = tp * pp * dp
    dp_in = max(1.0, min(dp, math.floor(per_domain / (tp * pp))))   # replicas per domain
    fixed = OPTIMIZER_BYTES * params / used + setup.act
    if job[J_HINT_EP] > 0:
        ep = job[J_HINT_EP]
        if ep > dp or ep > experts:
            return out
    elif experts <= 1.0:
        ep = 1.0
    else:
        # Expert groups of a power of two, inside one domain so that the all-to-all
        # stays on the scale-up fabric, unless the experts then do not fit.
        ep = pow2_at_most(min(experts, dp_in))
        if STATE_BYTES * (job[J_DENSE] + expert / ep) / (tp * pp) + fixed > usable:
            ep = pow2_at_most(min(experts, dp))
    out.pp, out.dp, out.ep = pp, dp, ep

    params_per_chip = (job[J_DENSE] + expert / ep) / (tp * pp)
    static = STATE_BYTES * params_per_chip + OPTIMIZER_BYTES * params / used
    span = setup.act_full - setup.act_min
    if setup.recompute:
        # Recompute just enough layers to fit (Megatron's per-layer recompute).
        share = min(1.0, max(0.0, (static + setup.act_full - usable) / span))
        fits = static + setup.act_min <= usable
    else:
        share = 0.0
        fits = static + setup.act_full <= usable
    out.recompute = share
    out.mem_per_chip = static + setup.act_full - share * span
    if not fits:
        out.reason = MEMORY
        return out
    micro_batches = job[J_BATCH_SEQS] / dp      # micro-batch = one sequence
    if micro_batches < 1.0:
        out.reason = BATCH
        return out

    t_compute = setup.compute_work * (1.0 + share * (RECOMPUTE_FLOPS - 1.0)) / used
    layer_passes = micro_batches * layers / pp  # layers a stage runs per step
    collectives = 4.0 + 2.0 * share             # fwd 2 + bwd 2, + fwd 2 again where recomputed
    t_tp = layer_passes * collectives * setup.tp_allreduce
    # Interleaved 1F1B: each device holds `virtual` model chunks, which divides the
    # pipeline bubble by that much and multiplies the point-to-point hops.
    virtual = 1.0
    t_pp = 0.0
    if pp > 1.0:
        virtual = max(1.0, min(VIRTUAL_MAX, math.floor(layers / pp / CHUNK_LAYERS_MIN)))
        t_pp = 2.0 * micro_batches * virtual * (setup.hop_so if tp * pp > per_domain else setup.hop_su)
    bubble = (pp - 1.0) / (virtual * micro_batches)

    # Gradient reduction: reduce-scatter inside each domain, then across domains
    # on the shard each chip owns (hierarchical, as NCCL and Neuron do).
    su_bw = chip[C_SU_BW] * chip[C_EFF_NET]
    so_bw = chip[C_SO_BW] * chip[C_EFF_NET]
    su_lat, so_lat = chip[C_SU_LAT], chip[C_SO_LAT]
    grad_bytes = 2.0 * params_per_chip
    dp_out = math.ceil(dp / dp_in)
    t_dp = (allreduce_time(dp_in, grad_bytes, su_bw, su_lat)
            + allreduce_time(dp_out, grad_bytes / dp_in, so_bw, so_lat))
    t_dp_exposed = max(0.0, t_dp - DP_OVERLAP * t_compute)

    t_ep = 0.0
    if ep > 1.0:
        ep_in = max(1.0, min(ep, dp_in))
        t_ep = layer_passes * collectives * alltoall_time(ep, ep_in, setup.a2a_bytes, su_bw, su_lat,
                                                          so_bw, so_lat)

    # The bubble idles a stage's whole critical path: its compute and the
    # collectives inside it; the gradient reduction and hops come on top.
    step = (t_compute + t_tp + t_ep) * (1.0 + bubble) + t_pp + t_dp_exposed
    out.step_time_s = step
    out.tokens_per_s = job[J_BATCH_SEQS] * job[J_SEQ_LEN] / step
    out.mfu = setup.model_flops / (step * n * setup.peak)
    out.duration_h = step * setup.hours_per_step
    out.score = -step
    activity = t_compute / step
    out.power_kw = n * (chip[C_IDLE_KW] + chip[C_BUSY_KW] * activity)
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


class Replica:
    """What one inference replica of tensor-parallel degree tp achieves.  None of it
    depends on the candidate's chip count, so the core computes it once per job,
    chip type and domain size and reuses it across counts."""

    __slots__ = ("tp", "pp", "weights_chip", "kv_seq", "kv_split", "max_batch", "batch", "mem_per_chip",
                 "fits", "ttft", "tpot", "busy", "per_replica", "need", "excess")


def replica(job, chip, per_domain: float, tp: float) -> Replica:
    r = Replica()
    r.tp = tp
    usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    wbytes = 1.0 if job[J_FP8] > 0.0 else 2.0
    weights = job[J_PARAMS] * wbytes
    r.kv_seq = (job[J_PROMPT] + job[J_OUTPUT]) * job[J_LAYERS] * job[J_KV_DIM] * wbytes
    r.kv_split = min(tp, job[J_KV_HEADS])
    if job[J_HINT_PP] > 0:
        pp = job[J_HINT_PP]
    else:
        # Per chip: weights/(tp pp) plus the KV cache of at least one sequence.
        room = usable - r.kv_seq / r.kv_split
        pp_need = weights / tp / room if room > 0.0 else INF
        pp = pow2_at_least(pp_need) if pp_need <= job[J_LAYERS] else INF
    r.pp = pp
    r.weights_chip = weights / (tp * min(pp, job[J_LAYERS]))
    r.max_batch = r.batch = r.ttft = r.tpot = r.busy = r.per_replica = r.need = r.excess = 0.0
    r.fits = False
    r.mem_per_chip = r.weights_chip + r.kv_seq / r.kv_split
    if pp > job[J_LAYERS]:
        return r

    free = usable - r.weights_chip
    r.max_batch = min(float(MAX_BATCH), math.floor(free * r.kv_split / r.kv_seq)) if free > 0.0 else 0.0
    wanted = job[J_BATCH] if job[J_BATCH] > 0 else max(r.max_batch, 1.0)
    r.batch = wanted
    r.mem_per_chip = r.weights_chip + wanted * r.kv_seq / r.kv_split
    r.fits = wanted <= r.max_batch
    if not r.fits:
        return r

    model = _Infer(job, chip, tp, pp, per_domain)
    r.ttft = model.ttft()
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
    r.batch, r.tpot, r.busy = wanted, step, busy
    r.per_replica = model.throughput(wanted, step)
    r.need = job[J_RATE] * job[J_OUTPUT] / r.per_replica   # replicas the request rate needs
    r.excess = max(r.ttft / job[J_SLO_TTFT], r.tpot / job[J_SLO_TPOT])
    return r


def _infer(job, chip, n: float, rep: Replica) -> Layout:
    """An inference layout: as many replicas as fit in n chips."""
    out = Layout()
    tp, pp = rep.tp, rep.pp
    out.tp = tp
    if pp > job[J_LAYERS] or tp * pp > n:
        out.reason = MEMORY
        out.pp = min(pp, job[J_LAYERS])
        out.mem_per_chip = rep.weights_chip + rep.kv_seq / rep.kv_split
        return out
    replicas = n // (tp * pp)
    if job[J_HINT_DP] > 0:
        if job[J_HINT_DP] > replicas:
            return out
        replicas = job[J_HINT_DP]
    out.pp, out.dp, out.replicas = pp, replicas, replicas
    out.max_batch, out.batch, out.mem_per_chip = rep.max_batch, rep.batch, rep.mem_per_chip
    if not rep.fits:
        out.reason = MEMORY
        return out

    out.ttft_s, out.tpot_s = rep.ttft, rep.tpot
    total = replicas * rep.per_replica
    out.tokens_per_s = total
    out.replicas_needed = math.ceil(rep.need)
    load = min(1.0, rep.need / replicas) if rep.need > 0.0 else 1.0
    out.duration_h = job[J_DURATION_H]
    activity = load * rep.busy
    out.power_kw = n * (chip[C_IDLE_KW] + chip[C_BUSY_KW] * activity)
    out.energy_kwh = out.power_kw * out.duration_h
    out.cost_usd = n * chip[C_PRICE_HR] * out.duration_h
    if rep.ttft > job[J_SLO_TTFT]:
        out.reason, out.score = SLO_TTFT, -rep.excess
    elif rep.tpot > job[J_SLO_TPOT]:
        out.reason, out.score = SLO_TPOT, -rep.excess
    elif rep.need > replicas:
        out.reason, out.score = RATE, total
    else:
        out.reason, out.score = OK, total
    return out


def score_one(job, chip, chips: int, domains: int) -> Layout:
    """Best layout for one job (a job-table row) on one chip-table row.

    Tensor-parallel degrees are tried in increasing order; training falls back to
    full activation recompute only when the plain layout does not fit.  The search
    stops at the first degree whose layout is feasible, needs no recompute and is
    slower than the best so far: past that point collectives only grow.  (A layout
    that needs recompute may be followed by a faster one that does not.)
    """
    best = Layout()
    if chips < 1 or domains < 1:
        return best
    # Hopeless at any layout: even with every byte of state spread over all chips.
    floor_bytes = memory_floor(job) / chips
    if floor_bytes > chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE]):
        best.reason = MEMORY
        best.mem_per_chip = floor_bytes
        return best
    per_domain = min(chip[C_DOMAIN], math.ceil(chips / domains))
    hint_tp = job[J_HINT_TP]
    tp = 1.0
    for _ in TP_OPTIONS:
        if tp > per_domain or tp > chips or tp > job[J_HEADS]:
            break
        if hint_tp <= 0 or tp == hint_tp:
            if job[J_KIND] == 0:
                cand = _train(job, chip, chips, per_domain, train_setup(job, chip, tp, 0))
                if cand.reason == MEMORY:
                    again = _train(job, chip, chips, per_domain, train_setup(job, chip, tp, 1))
                    if again.beats(cand):
                        cand = again
            else:
                cand = _infer(job, chip, chips, replica(job, chip, per_domain, tp))
            if cand.beats(best):
                best = cand
            elif best.reason == OK and cand.reason == OK and not cand.recompute:
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
