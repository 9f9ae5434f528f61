"""Training layouts: pipeline depth from memory, data and expert parallelism from
what is left, recompute when needed, and the step time (_training.pxi)."""
from __future__ import annotations

import math

from trnsched.perf.columns import (
    BATCH, C_A2A_OVERLAP, C_BUSY_KW, C_EFF_BF16, C_EFF_NET, C_GEMM_W0, C_HBM, C_HOST_KW, C_IDLE_KW, C_MEM_RESERVE, C_PEAK_BF16, C_PRICE_HR, C_SO_BW,
    C_SO_LAT, C_SU_BW, C_SU_LAT, DEADLINE, J_ACTIVE, J_ARRIVAL_H, J_ATTN_DIM, J_BATCH_SEQS, J_DEADLINE_H,
    J_DENSE, J_EXPERTS, J_HIDDEN, J_HINT_DP, J_HINT_EP, J_HINT_PP, J_LAYERS, J_PARAMS, J_SEQ_LEN, J_TOKENS,
    J_TOP_K, J_VOCAB, MEMORY, OK,
)
from trnsched.perf.constants import (
    ACT_BYTES_FULL, ACT_BYTES_RECOMPUTE, CHUNK_LAYERS_MIN, DP_OVERLAP, LOGIT_BYTES, OPTIMIZER_BYTES, RECOMPUTE_FLOPS,
    STATE_BYTES, VIRTUAL_MAX,
)
from trnsched.perf.reference.common import (
    INF, Layout, allreduce_time, alltoall_time, arithmetic, gemm_params, hierarchical_allreduce, pow2_at_least,
)


class TrainSetup:
    """The parts of a training layout fixed by job, chip type, tp and recompute:
    the core computes them once and reuses them across chip counts."""

    __slots__ = ("tp", "recompute", "act", "act_full", "act_min",
                 "model_flops", "peak", "compute_work", "tp_allreduce", "hop_su", "hop_so", "token_bytes",
                 "hours_per_step")


def train_setup(job, chip, tp: float, recompute: int) -> TrainSetup:
    s = TrainSetup()
    s.tp, s.recompute = tp, recompute
    layers, hidden, seq = job[J_LAYERS], job[J_HIDDEN], job[J_SEQ_LEN]
    # Activations held per chip: every layer's for one sequence (1F1B keeps pp
    # micro-batches of L/pp layers in flight), all of it or only the layer inputs.
    # The output layer's logits come on top and are never recomputed (counted as if
    # on the busiest stage).
    logits = LOGIT_BYTES * seq * job[J_VOCAB] / tp
    s.act_full = ACT_BYTES_FULL * hidden / tp * seq * layers + logits
    s.act_min = ACT_BYTES_RECOMPUTE * hidden / tp * seq * layers + logits
    s.act = s.act_min if recompute else s.act_full   # what the pipeline depth is sized for
    s.peak, eff = arithmetic(job, chip)
    width = hidden / tp
    narrow = width / (width + chip[C_GEMM_W0])
    tokens = job[J_BATCH_SEQS] * seq
    attention_flops = 12.0 * tokens * layers * seq * job[J_ATTN_DIM]
    s.model_flops = 6.0 * tokens * job[J_ACTIVE] + attention_flops
    # Seconds of compute per step on one chip, before recompute; divided by the chips
    # used.  Narrow expert FFNs run below dense GEMM efficiency (gemm_params); attention
    # runs in bf16 whatever the precision of the matrix multiplies (Transformer
    # Engine's and DeepSeek's FP8 recipes).
    s.compute_work = (6.0 * tokens * gemm_params(job, chip) / (s.peak * eff)
                      + attention_flops / (chip[C_PEAK_BF16] * chip[C_EFF_BF16])) / narrow
    su_bw = chip[C_SU_BW] * chip[C_EFF_NET]
    so_bw = chip[C_SO_BW] * chip[C_EFF_NET]
    s.tp_allreduce = allreduce_time(tp, seq * hidden * 2.0, su_bw, chip[C_SU_LAT])
    s.hop_su = seq * hidden * 2.0 / tp / su_bw + chip[C_SU_LAT]
    s.hop_so = seq * hidden * 2.0 / tp / so_bw + chip[C_SO_LAT]
    s.token_bytes = seq / tp * hidden * 2.0   # one micro-batch's tokens on this chip, bf16
    s.hours_per_step = job[J_TOKENS] / (job[J_BATCH_SEQS] * seq) / 3600.0
    return s


def train_layout(job, chip, n: float, per_domain: float, setup: TrainSetup) -> Layout:
    """The best layout at this tp: for a MoE, every expert-parallel degree that
    divides the experts and can fit in the data-parallel degree (each with the
    pipeline depth its memory needs), largest first; of equals, the first."""
    if job[J_HINT_EP] > 0:
        ep = job[J_HINT_EP]
        if ep > job[J_EXPERTS] or math.fmod(job[J_EXPERTS], ep) != 0.0:
            out = Layout()
            out.tp = setup.tp
            return out      # expert groups must divide the experts
        return train_eval(job, chip, n, per_domain, setup, ep)
    # ep <= dp <= the sequences per step: a larger group could not split the batch.
    ep = largest_expert_group(job[J_EXPERTS], min(n / setup.tp, job[J_BATCH_SEQS]))
    best = train_eval(job, chip, n, per_domain, setup, ep)
    while ep > 1.0:
        ep *= 0.5
        cand = train_eval(job, chip, n, per_domain, setup, ep)
        if cand.beats(best):
            best = cand
    return best


def largest_expert_group(experts: float, limit: float) -> float:
    """The largest power of two that divides the expert count and is <= limit."""
    ep = 1.0
    while ep * 2.0 <= min(experts, limit) and math.fmod(experts, ep * 2.0) == 0.0:
        ep *= 2.0
    return ep


def train_eval(job, chip, n: float, per_domain: float, setup: TrainSetup, ep: float) -> Layout:
    """One layout: tp from the setup, the given expert-parallel degree, the
    shallowest pipeline that fits, and the data parallelism that is left.

    Ranks are laid out in Megatron's order (tp innermost, then data/expert
    parallel, then pipeline stages) on consecutive chips of each scale-up
    domain, and each collective pays for the links its group spans."""
    out = Layout()
    tp = setup.tp
    out.tp = tp
    layers, params = job[J_LAYERS], job[J_PARAMS]
    dense = job[J_DENSE]
    expert = params - dense
    usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])

    fixed = OPTIMIZER_BYTES * params / n + setup.act   # optimizer state is sharded over every chip
    state = STATE_BYTES * (dense + expert / ep) / tp   # weights+grads per chip before pipelining
    if job[J_HINT_PP] > 0:
        pp = job[J_HINT_PP]
    else:
        room = usable - fixed
        pp_need = state / room if room > 0.0 else INF
        pp = pow2_at_least(max(pp_need, 1.0)) if pp_need <= layers else INF
    if pp > layers or tp * pp > n:
        # The smallest pipeline that would fit is deeper than the model or the chips allow.
        out.reason = MEMORY
        out.pp = min(pp, layers)
        out.ep = ep
        out.mem_per_chip = fixed + state / out.pp
        return out
    dp = math.floor(n / (tp * pp))
    if job[J_HINT_DP] > 0:
        if job[J_HINT_DP] > dp:
            return out
        dp = job[J_HINT_DP]
    # Expert groups are formed from data-parallel ranks: dp must be a multiple of ep.
    dp = math.floor(dp / ep) * ep
    if dp < 1.0 or (job[J_HINT_DP] > 0 and dp != job[J_HINT_DP]):
        return out
    used = tp * pp * dp
    out.pp, out.dp, out.ep = pp, dp, ep

    params_per_chip = (dense + expert / ep) / (tp * pp)
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
    # pipeline bubble by that much and multiplies the point-to-point hops.  Stages
    # are outermost in the rank order: their hops leave the domain once the job does.
    virtual = 1.0
    t_pp = 0.0
    if pp > 1.0:
        virtual = max(1.0, min(VIRTUAL_MAX, math.floor(layers / pp / CHUNK_LAYERS_MIN)))
        t_pp = 2.0 * micro_batches * virtual * (setup.hop_so if used > per_domain else setup.hop_su)
    bubble = (pp - 1.0) / (virtual * micro_batches)

    # Gradient reduction, hierarchical (inside each domain, then across domains on
    # the shard each chip owns, as NCCL and Neuron do): the dense weights over all
    # dp replicas, the experts over the dp / ep replicas that hold the same experts.
    su_bw = chip[C_SU_BW] * chip[C_EFF_NET]
    so_bw = chip[C_SO_BW] * chip[C_EFF_NET]
    su_lat, so_lat = chip[C_SU_LAT], chip[C_SO_LAT]
    dp_in = max(1.0, min(dp, math.floor(per_domain / tp)))    # dp peers on one domain
    t_dp = hierarchical_allreduce(dp, dp_in, 2.0 * dense / (tp * pp), su_bw, su_lat, so_bw, so_lat)
    if expert > 0.0:
        edp = dp / ep
        edp_in = max(1.0, min(edp, math.floor(per_domain / (tp * ep))))
        t_dp += hierarchical_allreduce(edp, edp_in, 2.0 * expert / (ep * tp * pp), su_bw, su_lat, so_bw, so_lat)
    # Token dispatch and combine, forward and backward, partly hidden behind
    # other micro-batches' compute (docs/MODEL.md); the gradient reduction hides
    # behind what compute is left.  Together they hide behind no more than all of it.
    t_ep = 0.0
    if ep > 1.0:
        ep_in = min(ep, dp_in)
        t_ep = layer_passes * collectives * alltoall_time(
            ep, ep_in, setup.token_bytes, job[J_TOP_K], su_bw, su_lat, so_bw, so_lat)
    hidden_ep = min(t_ep, chip[C_A2A_OVERLAP] * t_compute)
    t_ep_exposed = t_ep - hidden_ep
    t_dp_exposed = t_dp - min(t_dp, DP_OVERLAP * t_compute, t_compute - hidden_ep)

    # The bubble idles a stage's whole critical path: its compute and the
    # collectives inside it; the gradient reduction and hops come on top.
    step = (t_compute + t_tp + t_ep_exposed) * (1.0 + bubble) + t_pp + t_dp_exposed
    out.step_time_s = step
    out.tokens_per_s = job[J_BATCH_SEQS] * job[J_SEQ_LEN] / step
    out.mfu = setup.model_flops / (step * n * setup.peak)
    out.duration_h = step * setup.hours_per_step
    out.score = -step
    activity = t_compute / step
    out.power_kw = n * (chip[C_IDLE_KW] + chip[C_HOST_KW]) + used * chip[C_BUSY_KW] * activity   # idle chips idle
    out.energy_kwh = out.power_kw * out.duration_h
    out.cost_usd = n * chip[C_PRICE_HR] * out.duration_h
    if job[J_ARRIVAL_H] + out.duration_h > job[J_DEADLINE_H]:
        out.reason = DEADLINE
        return out
    out.reason = OK
    return out
