# Included by _core.pyx: training layouts (trnsched/perf/reference/training.py
# is the readable twin).

ctypedef struct TrainSetup:
    double tp, recompute, act, act_full, act_min, model_flops, peak
    double compute_work, tp_allreduce, hop_su, hop_so, token_bytes, hours_per_step


cdef void train_setup(const double* job, const double* chip, double tp, int recompute,
                      TrainSetup* s) noexcept nogil:
    cdef double layers = job[J_LAYERS], hidden = job[J_HIDDEN], seq = job[J_SEQ_LEN]
    cdef double width = hidden / tp, eff, su_bw, so_bw, narrow, tokens, attention_flops, logits
    s.tp = tp
    s.recompute = recompute
    logits = LOGIT_BYTES * seq * job[J_VOCAB] / tp
    s.act_full = ACT_BYTES_FULL * hidden / tp * seq * layers + logits
    s.act_min = ACT_BYTES_RECOMPUTE * hidden / tp * seq * layers + logits
    s.act = s.act_min if recompute else s.act_full
    s.peak = arithmetic(job, chip, &eff)
    narrow = width / (width + chip[C_GEMM_W0])
    tokens = job[J_BATCH_SEQS] * seq
    attention_flops = 12.0 * tokens * layers * seq * job[J_ATTN_DIM]
    s.model_flops = 6.0 * tokens * job[J_ACTIVE] + attention_flops
    s.compute_work = (6.0 * tokens * gemm_params(job, chip) / (s.peak * eff)
                      + attention_flops / (chip[C_PEAK_BF16] * chip[C_EFF_BF16])) / narrow
    su_bw = chip[C_SU_BW] * chip[C_EFF_NET]
    so_bw = chip[C_SO_BW] * chip[C_EFF_NET]
    s.tp_allreduce = allreduce_time(tp, seq * hidden * 2.0, su_bw, chip[C_SU_LAT])
    s.hop_su = seq * hidden * 2.0 / tp / su_bw + chip[C_SU_LAT]
    s.hop_so = seq * hidden * 2.0 / tp / so_bw + chip[C_SO_LAT]
    s.token_bytes = seq / tp * hidden * 2.0
    s.hours_per_step = job[J_TOKENS] / (job[J_BATCH_SEQS] * seq) / 3600.0


cdef inline double train_floor(const double* job, const TrainSetup* s, double n) noexcept nogil:
    """A lower bound on the step time at this tp with any pipeline depth and either
    recompute setting: all n chips computing, plus the tensor-parallel collectives of
    at least batch/dp micro-batches.  It grows with tp (narrower GEMMs, bigger groups)."""
    return (s.compute_work + job[J_BATCH_SEQS] * s.tp * job[J_LAYERS] * 4.0 * s.tp_allreduce) / n


cdef inline double largest_expert_group(double experts, double limit) noexcept nogil:
    cdef double ep = 1.0, top = fmin(experts, limit)
    while ep * 2.0 <= top and fmod(experts, ep * 2.0) == 0.0:
        ep *= 2.0
    return ep


cdef void train_layout(const double* job, const double* chip, double n, double per_domain,
                       const TrainSetup* setup, Layout* out) noexcept nogil:
    # The best layout at this tp: for a MoE, every expert-parallel degree dividing the
    # experts, largest first (reference: training.train_layout).  (A lower bound per
    # degree skipped too few of them to pay for itself: bench/RESULTS.md.)
    cdef double ep
    cdef Layout scratch[2]
    cdef Layout* best = &scratch[0]
    cdef Layout* cand = &scratch[1]
    cdef Layout* tmp
    if job[J_HINT_EP] > 0:
        layout_init(out)
        out.tp = setup.tp
        if job[J_HINT_EP] <= job[J_EXPERTS] and fmod(job[J_EXPERTS], job[J_HINT_EP]) == 0.0:
            train_eval(job, chip, n, per_domain, setup, job[J_HINT_EP], out)
        return
    if job[J_EXPERTS] <= 1.0:
        train_eval(job, chip, n, per_domain, setup, 1.0, out)
        return
    ep = largest_expert_group(job[J_EXPERTS], fmin(n / setup.tp, job[J_BATCH_SEQS]))
    train_eval(job, chip, n, per_domain, setup, ep, best)
    while ep > 1.0:
        ep *= 0.5
        train_eval(job, chip, n, per_domain, setup, ep, cand)
        if beats(cand, best):
            tmp = best; best = cand; cand = tmp
    out[0] = best[0]


cdef inline bint ranked(int reason) noexcept nogil:
    # A training layout that is feasible or misses only its deadline: any layout with a
    # longer step is no better (it would miss the deadline too).
    return reason == OK or reason == DEADLINE


cdef void train_eval(const double* job, const double* chip, double n, double per_domain,
                     const TrainSetup* setup, double ep, Layout* out) noexcept nogil:
    cdef double tp = setup.tp
    cdef double layers = job[J_LAYERS], params = job[J_PARAMS]
    cdef double dense = job[J_DENSE]
    cdef double expert = params - dense
    cdef double usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    cdef double fixed, state, room, pp_need, pp, dp, used, params_per_chip
    cdef double micro_batches, t_compute, virtual, bubble, layer_passes, t_tp, t_pp
    cdef double su_bw, so_bw, su_lat, so_lat, dp_in, edp, edp_in, t_dp, t_dp_exposed
    cdef double t_ep, t_ep_exposed, hidden_ep, step, activity, static, span, share, collectives
    cdef bint fits
    layout_init(out)
    out.tp = tp

    fixed = OPTIMIZER_BYTES * params / n + setup.act
    state = STATE_BYTES * (dense + expert / ep) / tp
    if job[J_HINT_PP] > 0:
        pp = job[J_HINT_PP]
    else:
        room = usable - fixed
        pp_need = state / room if room > 0.0 else INFINITY
        pp = pow2_at_least(fmax(pp_need, 1.0)) if pp_need <= layers else INFINITY
    if pp > layers or tp * pp > n:
        out.reason = MEMORY
        out.pp = fmin(pp, layers)
        out.ep = ep
        out.mem_per_chip = fixed + state / out.pp
        return
    dp = floor(n / (tp * pp))
    if job[J_HINT_DP] > 0:
        if job[J_HINT_DP] > dp:
            return
        dp = job[J_HINT_DP]
    dp = floor(dp / ep) * ep
    if dp < 1.0 or (job[J_HINT_DP] > 0 and dp != job[J_HINT_DP]):
        return
    used = tp * pp * dp
    out.pp = pp
    out.dp = dp
    out.ep = ep

    params_per_chip = (dense + expert / ep) / (tp * pp)
    static = STATE_BYTES * params_per_chip + OPTIMIZER_BYTES * params / used
    span = setup.act_full - setup.act_min
    if setup.recompute > 0.0:
        share = fmin(1.0, fmax(0.0, (static + setup.act_full - usable) / span))
        fits = static + setup.act_min <= usable
    else:
        share = 0.0
        fits = static + setup.act_full <= usable
    out.recompute = share
    out.mem_per_chip = static + setup.act_full - share * span
    if not fits:
        out.reason = MEMORY
        return
    micro_batches = job[J_BATCH_SEQS] / dp
    if micro_batches < 1.0:
        out.reason = BATCH
        return

    t_compute = setup.compute_work * (1.0 + share * (RECOMPUTE_FLOPS - 1.0)) / used
    layer_passes = micro_batches * layers / pp
    collectives = 4.0 + 2.0 * share
    t_tp = layer_passes * collectives * setup.tp_allreduce
    virtual = 1.0
    t_pp = 0.0
    if pp > 1.0:
        virtual = fmax(1.0, fmin(VIRTUAL_MAX, floor(layers / pp / CHUNK_LAYERS_MIN)))
        t_pp = 2.0 * micro_batches * virtual * (setup.hop_so if used > per_domain else setup.hop_su)
    bubble = (pp - 1.0) / (virtual * micro_batches)

    su_bw = chip[C_SU_BW] * chip[C_EFF_NET]
    so_bw = chip[C_SO_BW] * chip[C_EFF_NET]
    su_lat = chip[C_SU_LAT]
    so_lat = chip[C_SO_LAT]
    dp_in = fmax(1.0, fmin(dp, floor(per_domain / tp)))
    t_dp = hierarchical_allreduce(dp, dp_in, 2.0 * dense / (tp * pp), su_bw, su_lat, so_bw, so_lat)
    if expert > 0.0:
        edp = dp / ep
        edp_in = fmax(1.0, fmin(edp, floor(per_domain / (tp * ep))))
        t_dp += hierarchical_allreduce(edp, edp_in, 2.0 * expert / (ep * tp * pp), su_bw, su_lat, so_bw, so_lat)

    t_ep = 0.0
    if ep > 1.0:
        t_ep = layer_passes * collectives * alltoall_time(
            ep, fmin(ep, dp_in), setup.token_bytes, job[J_TOP_K], su_bw, su_lat, so_bw, so_lat)
    hidden_ep = fmin(t_ep, chip[C_A2A_OVERLAP] * t_compute)
    t_ep_exposed = t_ep - hidden_ep
    t_dp_exposed = t_dp - fmin(fmin(t_dp, DP_OVERLAP * t_compute), t_compute - hidden_ep)

    step = (t_compute + t_tp + t_ep_exposed) * (1.0 + bubble) + t_pp + t_dp_exposed
    out.step_time_s = step
    out.tokens_per_s = job[J_BATCH_SEQS] * job[J_SEQ_LEN] / step
    out.mfu = setup.model_flops / (step * n * setup.peak)
    out.duration_h = step * setup.hours_per_step
    out.score = -step
    activity = t_compute / step
    out.power_kw = n * (chip[C_IDLE_KW] + chip[C_HOST_KW]) + used * chip[C_BUSY_KW] * activity
    out.energy_kwh = out.power_kw * out.duration_h
    out.cost_usd = n * chip[C_PRICE_HR] * out.duration_h
    if job[J_ARRIVAL_H] + out.duration_h > job[J_DEADLINE_H]:
        out.reason = DEADLINE
        return
    out.reason = OK
