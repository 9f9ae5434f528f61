"""Training layouts: pipeline depth from memory, data and expert parallelism from
what is left, recompute when needed, and the step time (_training.pxi)."""
from __future__ import annotations

import math

from trnsched.perf.columns import (
    BATCH, C_BUSY_KW, C_EFF_NET, C_GEMM_W0, C_HBM, C_HOST_KW, C_IDLE_KW, C_MEM_RESERVE, C_PRICE_HR, C_SO_BW,
    C_SO_LAT, C_SU_BW, C_SU_LAT, DEADLINE, J_ACTIVE, J_ARRIVAL_H, J_ATTN_DIM, J_BATCH_SEQS, J_DEADLINE_H,
    J_DENSE, J_EXPERTS, J_HIDDEN, J_HINT_DP, J_HINT_EP, J_HINT_PP, J_LAYERS, J_PARAMS, J_SEQ_LEN, J_TOKENS,
    J_TOP_K, MEMORY, OK,
)
from trnsched.perf.constants import (
    ACT_BYTES_FULL, ACT_BYTES_RECOMPUTE, CHUNK_LAYERS_MIN, DP_OVERLAP, OPTIMIZER_BYTES, RECOMPUTE_FLOPS,
    STATE_BYTES, VIRTUAL_MAX,
)
from trnsched.perf.reference.common import INF, Layout, arithmetic, allreduce_time, alltoall_time, pow2_at_least, pow2_at_most


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
    s.peak, eff = arithmetic(job, chip)
    width = hidden / tp
    eff *= width / (width + chip[C_GEMM_W0])
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


def train_layout(job, chip, n: float, per_domain: float, setup: TrainSetup) -> Layout:
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
    out.power_kw = n * (chip[C_IDLE_KW] + chip[C_HOST_KW] + chip[C_BUSY_KW] * activity)
    out.energy_kwh = out.power_kw * out.duration_h
    out.cost_usd = n * chip[C_PRICE_HR] * out.duration_h
    if job[J_ARRIVAL_H] + out.duration_h > job[J_DEADLINE_H]:
        out.reason = DEADLINE
        return out
    out.reason = OK
    return out
