# Included by _core.pyx: training layouts (trnsched/perf/reference/training.py
# is the readable twin).

ctypedef struct TrainSetup:
    double tp, recompute, act, act_full, act_min, state_all, state_dense, model_flops, peak
    double compute_work, tp_allreduce, hop_su, hop_so, a2a_bytes, hours_per_step


cdef void train_setup(const double* job, const double* chip, double tp, int recompute,
                      TrainSetup* s) noexcept nogil:
    cdef double layers = job[J_LAYERS], hidden = job[J_HIDDEN], seq = job[J_SEQ_LEN]
    cdef double dense = job[J_DENSE]
    cdef double expert = job[J_PARAMS] - dense
    cdef double width = hidden / tp, eff, su_bw, so_bw
    s.tp = tp
    s.recompute = recompute
    s.act_full = ACT_BYTES_FULL * hidden / tp * seq * layers
    s.act_min = ACT_BYTES_RECOMPUTE * hidden / tp * seq * layers
    s.act = s.act_min if recompute else s.act_full
    s.state_all = STATE_BYTES * (dense + expert / job[J_EXPERTS]) / tp
    s.state_dense = STATE_BYTES * dense / tp
    s.peak = arithmetic(job, chip, &eff)
    eff *= width / (width + chip[C_GEMM_W0])
    s.model_flops = job[J_BATCH_SEQS] * seq * (6.0 * job[J_ACTIVE] + 12.0 * layers * seq * job[J_ATTN_DIM])
    s.compute_work = s.model_flops / (s.peak * eff)
    su_bw = chip[C_SU_BW] * chip[C_EFF_NET]
    so_bw = chip[C_SO_BW] * chip[C_EFF_NET]
    s.tp_allreduce = allreduce_time(tp, seq * hidden * 2.0, su_bw, chip[C_SU_LAT])
    s.hop_su = seq * hidden * 2.0 / tp / su_bw + chip[C_SU_LAT]
    s.hop_so = seq * hidden * 2.0 / tp / so_bw + chip[C_SO_LAT]
    s.a2a_bytes = seq / tp * job[J_TOP_K] * hidden * 2.0
    s.hours_per_step = job[J_TOKENS] / (job[J_BATCH_SEQS] * seq) / 3600.0


cdef inline double train_floor(const double* job, const TrainSetup* s, double n) noexcept nogil:
    """A lower bound on the step time at this tp with any pipeline depth and either
    recompute setting: all n chips computing, plus the tensor-parallel collectives of
    at least batch/dp micro-batches.  It grows with tp (narrower GEMMs, bigger groups)."""
    return (s.compute_work + job[J_BATCH_SEQS] * s.tp * job[J_LAYERS] * 4.0 * s.tp_allreduce) / n


cdef void train_layout(const double* job, const double* chip, double n, double per_domain,
                       const TrainSetup* setup, Layout* out) noexcept nogil:
    cdef double tp = setup.tp
    cdef double layers = job[J_LAYERS], params = job[J_PARAMS], experts = job[J_EXPERTS]
    cdef double expert = params - job[J_DENSE]
    cdef double usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    cdef double fixed, room, room_ep, pp_need, pp, dp, ep, used, params_per_chip, mem
    cdef double micro_batches, t_compute, virtual, bubble, layer_passes, t_tp, t_pp
    cdef double su_bw, so_bw, su_lat, so_lat, grad_bytes, dp_in, dp_out, t_dp, t_dp_exposed
    cdef double t_ep, ep_in, step, activity, static, span, share, collectives
    cdef bint fits
    layout_init(out)
    out.tp = tp

    fixed = OPTIMIZER_BYTES * params / n + setup.act
    if job[J_HINT_PP] > 0:
        pp = job[J_HINT_PP]
    else:
        room = usable - fixed
        room_ep = room - STATE_BYTES * expert / n
        if room <= 0.0 or room_ep <= 0.0:
            pp_need = INFINITY
        else:
            pp_need = fmax(fmax(setup.state_all / room, setup.state_dense / room_ep), 1.0)
        pp = pow2_at_least(pp_need) if pp_need <= layers else INFINITY
    if pp > layers or tp * pp > n:
        out.reason = MEMORY
        out.pp = fmin(pp, layers)
        out.mem_per_chip = fixed + setup.state_all / out.pp
        return
    dp = floor(n / (tp * pp))
    if job[J_HINT_DP] > 0:
        if job[J_HINT_DP] > dp:
            return
        dp = job[J_HINT_DP]
    used = tp * pp * dp
    dp_in = fmax(1.0, fmin(dp, floor(per_domain / (tp * pp))))
    fixed = OPTIMIZER_BYTES * params / used + setup.act
    if job[J_HINT_EP] > 0:
        ep = job[J_HINT_EP]
        if ep > dp or ep > experts:
            return
    elif experts <= 1.0:
        ep = 1.0
    else:
        ep = pow2_at_most(fmin(experts, dp_in))
        if STATE_BYTES * (job[J_DENSE] + expert / ep) / (tp * pp) + fixed > usable:
            ep = pow2_at_most(fmin(experts, dp))
    out.pp = pp
    out.dp = dp
    out.ep = ep

    params_per_chip = (job[J_DENSE] + expert / ep) / (tp * pp)
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
        t_pp = 2.0 * micro_batches * virtual * (setup.hop_so if tp * pp > per_domain else setup.hop_su)
    bubble = (pp - 1.0) / (virtual * micro_batches)

    su_bw = chip[C_SU_BW] * chip[C_EFF_NET]
    so_bw = chip[C_SO_BW] * chip[C_EFF_NET]
    su_lat = chip[C_SU_LAT]
    so_lat = chip[C_SO_LAT]
    grad_bytes = 2.0 * params_per_chip
    dp_out = ceil(dp / dp_in)
    t_dp = (allreduce_time(dp_in, grad_bytes, su_bw, su_lat)
            + allreduce_time(dp_out, grad_bytes / dp_in, so_bw, so_lat))
    t_dp_exposed = fmax(0.0, t_dp - DP_OVERLAP * t_compute)

    t_ep = 0.0
    if ep > 1.0:
        ep_in = fmax(1.0, fmin(ep, dp_in))
        t_ep = layer_passes * collectives * alltoall_time(ep, ep_in, setup.a2a_bytes, su_bw, su_lat,
                                                          so_bw, so_lat)

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
        return
    out.reason = OK
