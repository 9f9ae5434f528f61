# Included by _core.pyx: inference layouts (trnsched/perf/reference/serving.py
# is the readable twin).

ctypedef struct Infer:
    # One replica's timings for one (tp, pp): the coefficients of T(b) (serving.Infer).
    const double* job
    const double* chip
    double tp, pp, peak, eff, work
    double compute, kv, dense, expert, wire, fixed, spared


cdef inline void infer_init(Infer* m, const double* job, const double* chip, double tp, double pp,
                            double per_domain) noexcept nogil:
    cdef double width = job[J_HIDDEN] / tp, eff
    cdef double su_bw = chip[C_SU_BW] * chip[C_EFF_NET], hbm_bw = chip[C_HBM_BW] * chip[C_EFF_HBM]
    cdef double pp_bw, pp_lat, kv_split = fmin(tp, job[J_KV_HEADS])
    cdef double layers = job[J_LAYERS], lat = chip[C_SU_LAT], token_bytes = job[J_HIDDEN] * 2.0
    cdef double ctx = job[J_PROMPT] + 0.5 * job[J_OUTPUT], per_token, fixed
    m.job = job
    m.chip = chip
    m.tp = tp
    m.pp = pp
    m.peak = arithmetic(job, chip, &eff)
    m.eff = eff * width / (width + chip[C_GEMM_W0])
    if tp * pp > per_domain:
        pp_bw = chip[C_SO_BW] * chip[C_EFF_NET]
        pp_lat = chip[C_SO_LAT]
    else:
        pp_bw = chip[C_SU_BW] * chip[C_EFF_NET]
        pp_lat = chip[C_SU_LAT]
    m.work = gemm_params(job, chip)
    m.compute = (2.0 * m.work + 4.0 * layers * ctx * job[J_ATTN_DIM]) / (tp * m.peak * m.eff)
    m.kv = ctx * layers * job[J_KV_DIM] * job[J_KV_BYTES] / kv_split / hbm_bw
    m.dense = job[J_DENSE] * job[J_WBYTES] / tp / hbm_bw
    m.expert = (job[J_PARAMS] - job[J_DENSE]) * job[J_WBYTES] / tp / hbm_bw
    m.spared = log(1.0 - job[J_TOP_K] / job[J_EXPERTS]) if job[J_EXPERTS] > 1.0 else 0.0
    if job[J_EXPERTS] > 1.0:
        per_token = (allreduce_time(tp, token_bytes, su_bw, 0.0)
                     + 2.0 * alltoall_time(tp, tp, token_bytes, job[J_TOP_K], su_bw, 0.0, su_bw, 0.0))
        fixed = (allreduce_time(tp, 0.0, su_bw, lat)
                 + 2.0 * alltoall_time(tp, tp, 0.0, job[J_TOP_K], su_bw, lat, su_bw, lat))
    else:
        per_token = 2.0 * allreduce_time(tp, token_bytes, su_bw, 0.0)
        fixed = 2.0 * allreduce_time(tp, 0.0, su_bw, lat)
    m.wire = layers * per_token + (pp - 1.0) * token_bytes / pp_bw
    m.fixed = layers * fixed + (pp - 1.0) * pp_lat + layers * chip[C_LAYER_OVERHEAD]


cdef inline double reads(const Infer* m, double tokens) noexcept nogil:
    # Weights and the experts `tokens` tokens route to: a share 1 - (1 - k/E)^tokens.
    return m.dense + m.expert * (1.0 - exp(tokens * m.spared))


cdef inline double trip(const Infer* m, double batch, double* busy_share) noexcept nogil:
    # T(b): a micro-batch's trip through the whole model for one token, and the
    # share of TDP above idle it draws (serving.Infer.trip).
    cdef double compute = batch * m.compute, memory = reads(m, batch) + batch * m.kv
    cdef double step = fmax(compute, memory) + batch * m.wire + m.fixed
    if busy_share != NULL:
        busy_share[0] = (compute + MEM_BOUND_POWER * fmax(0.0, memory - compute)) / step
    return step


cdef inline double decode(const Infer* m, double n, double* busy_share) noexcept nogil:
    # n sequences in flight as min(pp, n) micro-batches.
    return trip(m, n / fmin(m.pp, fmax(n, 1.0)), busy_share)


cdef inline double prefill_work(const Infer* m) noexcept nogil:
    cdef const double* j = m.job
    cdef double p = j[J_PROMPT]
    return 2.0 * m.work * p + 2.0 * j[J_LAYERS] * p * p * j[J_ATTN_DIM]


cdef inline double infer_ttft(const Infer* m) noexcept nogil:
    cdef double p = m.job[J_PROMPT]
    cdef double t_compute = prefill_work(m) / (m.tp * m.peak * m.eff * m.chip[C_EFF_PREFILL])
    return fmax(t_compute, reads(m, p)) + p * m.wire + m.fixed + m.chip[C_REQUEST_OVERHEAD]


cdef inline double prefill_time(const Infer* m) noexcept nogil:
    return prefill_work(m) / (m.tp * m.pp * m.peak * m.eff * m.chip[C_EFF_PREFILL])


cdef inline double closed_loop(const Infer* m, double n, double t_pf, double ttft0, double* ttft,
                               double* activity) noexcept nogil:
    # TPOT of n streams in a closed loop; their TTFT and activity (serving.Infer.closed_loop).
    cdef double busy, output = m.job[J_OUTPUT]
    cdef double step = decode(m, n, &busy)
    cdef double share = t_pf / (t_pf + output * step / n)
    cdef double others = share * (n - 1.0) / n
    ttft[0] = ttft0 + others * t_pf / (2.0 * (1.0 - others))
    activity[0] = share + (1.0 - share) * busy
    return step + (n - 1.0) * t_pf / output


cdef inline bint within(const Infer* m, double n, double t_pf, double ttft0, double tpot_cap,
                        double ttft_cap) noexcept nogil:
    cdef double ttft, activity
    cdef double tpot = closed_loop(m, n, t_pf, ttft0, &ttft, &activity)
    return tpot <= tpot_cap and ttft <= ttft_cap


ctypedef struct Replica:
    Infer model
    double tp, pp, weights_chip, kv_seq, kv_split, max_batch, batch, mem_per_chip
    double ttft0, ttft, tpot, tpot1, step, busy, activity, t_prefill, per_replica, latency
    bint fits, crosses      # crosses: a pipeline hop leaves the scale-up domain


cdef void replica_init(const double* job, const double* chip, double per_domain, double tp,
                       Replica* r) noexcept nogil:
    cdef double usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    cdef double weights = job[J_PARAMS] * job[J_WBYTES]
    cdef double room, pp_need, pp, stages, kv_chip, free, n, busy = 0.0, lo, hi, mid, tpot_cap, ttft_cap
    cdef Infer* model = &r.model
    r.tp = tp
    r.kv_seq = (job[J_PROMPT] + job[J_OUTPUT]) * job[J_LAYERS] * job[J_KV_DIM] * job[J_KV_BYTES]
    r.kv_split = fmin(tp, job[J_KV_HEADS])
    if job[J_HINT_PP] > 0:
        pp = job[J_HINT_PP]
    else:
        room = usable - r.kv_seq / r.kv_split
        pp_need = weights / tp / room if room > 0.0 else INFINITY
        pp = pow2_at_least(pp_need) if pp_need <= job[J_LAYERS] else INFINITY
    r.pp = pp
    r.crosses = tp * pp > per_domain
    stages = fmin(pp, job[J_LAYERS])
    r.weights_chip = weights / (tp * stages)
    kv_chip = r.kv_seq / (r.kv_split * stages)
    r.max_batch = 0.0
    r.batch = 0.0
    r.ttft0 = 0.0
    r.ttft = 0.0
    r.activity = 0.0
    r.tpot = 0.0
    r.tpot1 = 0.0
    r.step = 0.0
    r.busy = 0.0
    r.t_prefill = 0.0
    r.per_replica = 0.0
    r.latency = 0.0
    r.fits = False
    r.mem_per_chip = r.weights_chip + kv_chip
    if pp > job[J_LAYERS]:
        return

    free = usable - r.weights_chip
    if free > 0.0:
        r.max_batch = fmin(<double>MAX_BATCH, floor(free / kv_chip))
    n = job[J_BATCH] if job[J_BATCH] > 0 else fmax(r.max_batch, 1.0)
    r.batch = n
    r.mem_per_chip = r.weights_chip + n * kv_chip
    r.fits = n <= r.max_batch
    if not r.fits:
        return

    infer_init(model, job, chip, tp, pp, per_domain)
    r.ttft0 = infer_ttft(model)
    r.t_prefill = prefill_time(model)
    r.tpot1 = trip(model, 1.0, NULL)
    r.latency = r.ttft0 + job[J_OUTPUT] * r.tpot1
    if ranking(job) == AS_PRACTITIONER:
        tpot_cap = SERVICE_TPOT_S
        ttft_cap = INFINITY
    else:
        tpot_cap = job[J_SLO_TPOT]
        ttft_cap = job[J_SLO_TTFT]
    if job[J_BATCH] <= 0 and not within(model, n, r.t_prefill, r.ttft0, tpot_cap, ttft_cap):
        lo = 1.0
        hi = n
        if within(model, lo, r.t_prefill, r.ttft0, tpot_cap, ttft_cap):
            while hi - lo > 1.0:
                mid = floor(0.5 * (lo + hi))
                if within(model, mid, r.t_prefill, r.ttft0, tpot_cap, ttft_cap):
                    lo = mid
                else:
                    hi = mid
            n = lo
        else:
            n = 1.0
    r.batch = n
    r.mem_per_chip = r.weights_chip + n * kv_chip
    r.step = decode(model, n, &busy)
    r.busy = busy
    r.tpot = closed_loop(model, n, r.t_prefill, r.ttft0, &r.ttft, &r.activity)
    r.per_replica = job[J_OUTPUT] / (r.t_prefill + job[J_OUTPUT] * r.step / n)


cdef inline double excess_inflight(const Replica* rep, double lam, double ttft, double stretch,
                                   double n) noexcept nogil:
    # g(n) of serving.under_load: sequences in flight by Little's law, less n.
    return fmax(1.0, lam * ttft + stretch * decode(&rep.model, n, NULL)) - n


cdef bint under_load(const double* job, const Replica* rep, double lam, double* ttft, double* tpot,
                     double* activity) noexcept nogil:
    # One replica taking lam requests/s (serving.under_load); false where it cannot hold them.
    cdef double rho = lam * rep.t_prefill, stretch, lo, hi, g_lo, g_hi, n, g_n, step, busy
    cdef int k, side = 0
    if rho >= 1.0:
        ttft[0] = INFINITY
        tpot[0] = INFINITY
        activity[0] = 1.0
        return False
    ttft[0] = rep.ttft0 + rho * rep.t_prefill / (2.0 * (1.0 - rho))
    stretch = lam * job[J_OUTPUT] / (1.0 - rho)
    hi = rep.batch
    g_hi = excess_inflight(rep, lam, ttft[0], stretch, hi)
    if g_hi > 0.0:
        tpot[0] = rep.step / (1.0 - rho)
        activity[0] = rho + (1.0 - rho) * rep.busy
        return False
    lo = 1.0
    g_lo = excess_inflight(rep, lam, ttft[0], stretch, lo)
    n = lo
    if g_lo > LOAD_SETTLED:
        for k in range(LOAD_STEPS):
            n = hi - g_hi * (hi - lo) / (g_hi - g_lo)
            g_n = excess_inflight(rep, lam, ttft[0], stretch, n)
            if fabs(g_n) <= LOAD_SETTLED * n or hi - lo <= LOAD_SETTLED * hi:
                break
            if g_n > 0.0:
                lo = n
                g_lo = g_n
                if side > 0:
                    g_hi *= 0.5
                side = 1
            else:
                hi = n
                g_hi = g_n
                if side < 0:
                    g_lo *= 0.5
                side = -1
    step = decode(&rep.model, n, &busy)
    tpot[0] = step / (1.0 - rho)
    activity[0] = rho + (1.0 - rho) * fmin(1.0, lam * (ttft[0] + job[J_OUTPUT] * tpot[0])) * busy
    return True


cdef inline int ranking(const double* job) noexcept nogil:
    if job[J_BATCH] > 0:
        return BY_LATENCY
    if job[J_SLO_TTFT] < INFINITY or job[J_SLO_TPOT] < INFINITY:
        return BY_SLO
    if job[J_OFFLINE] > 0:
        return BY_THROUGHPUT
    return AS_PRACTITIONER


cdef inline void settle(const double* job, const double* chip, double n, Layout* out,
                        double activity) noexcept nogil:
    out.power_kw = (n * (chip[C_IDLE_KW] + chip[C_HOST_KW])
                    + out.replicas * out.tp * out.pp * chip[C_BUSY_KW] * activity)
    out.energy_kwh = out.power_kw * out.duration_h
    out.cost_usd = n * chip[C_PRICE_HR] * out.duration_h


cdef inline void missed(const double* job, Layout* out) noexcept nogil:
    out.reason = SLO_TTFT if out.ttft_s > job[J_SLO_TTFT] else SLO_TPOT
    out.score = -fmax(out.ttft_s / job[J_SLO_TTFT], out.tpot_s / job[J_SLO_TPOT])


cdef void infer_layout(const double* job, const double* chip, double n, const Replica* rep,
                       Layout* out) noexcept nogil:
    # Final without a rate, or short of replicas for it; else provisional (serving.infer_layout).
    cdef double tp = rep.tp, pp = rep.pp, replicas, total, need
    layout_init(out)
    out.tp = tp
    if pp > job[J_LAYERS] or tp * pp > n:
        out.reason = MEMORY
        out.pp = fmin(pp, job[J_LAYERS])
        out.mem_per_chip = rep.mem_per_chip
        return
    replicas = floor(n / (tp * pp))
    if job[J_HINT_DP] > 0:
        if job[J_HINT_DP] > replicas:
            return
        replicas = job[J_HINT_DP]
    out.pp = pp
    out.dp = replicas
    out.replicas = replicas
    out.max_batch = rep.max_batch
    out.batch = rep.batch
    out.mem_per_chip = rep.mem_per_chip
    if not rep.fits:
        out.reason = MEMORY
        return

    total = replicas * rep.per_replica
    out.tokens_per_s = total
    out.latency_s = rep.latency
    need = job[J_RATE] * job[J_OUTPUT] / rep.per_replica
    out.replicas_needed = ceil(need)
    out.duration_h = job[J_DURATION_H]
    out.ttft_s = rep.ttft
    out.tpot_s = rep.tpot
    settle(job, chip, n, out, rep.activity)
    if job[J_RATE] > 0.0 and need > replicas:
        out.ttft_s = rep.ttft0
        out.tpot_s = rep.tpot1
        if out.ttft_s > job[J_SLO_TTFT] or out.tpot_s > job[J_SLO_TPOT]:
            missed(job, out)
        else:
            out.reason = RATE
            out.score = total
    elif job[J_RATE] <= 0.0 and (out.ttft_s > job[J_SLO_TTFT] or out.tpot_s > job[J_SLO_TPOT]):
        missed(job, out)
    else:
        out.reason = OK
        out.score = -(out.ttft_s + job[J_OUTPUT] * out.tpot_s) if ranking(job) == BY_LATENCY else total


cdef void apply_load(const double* job, const double* chip, double n, const Replica* rep,
                     Layout* out) noexcept nogil:
    cdef double activity
    cdef bint holds = under_load(job, rep, job[J_RATE] / out.replicas, &out.ttft_s, &out.tpot_s, &activity)
    settle(job, chip, n, out, activity)
    if out.ttft_s > job[J_SLO_TTFT] or out.tpot_s > job[J_SLO_TPOT]:
        missed(job, out)
    elif not holds:
        out.reason = RATE
        out.score = out.tokens_per_s
    elif ranking(job) == BY_LATENCY:
        out.score = -(out.ttft_s + job[J_OUTPUT] * out.tpot_s)


cdef void choose(const double* job, const double* chip, double n, Layout* layouts, const Replica** reps,
                 int count, Layout* best) noexcept nogil:
    # serving.choose(): the best of a candidate's layouts, one per tp; with a rate,
    # contenders on throughput are put under load best first, until one holds.
    cdef int k, pick
    cdef int mode = ranking(job)
    cdef bint viable[N_TP_OPTIONS]
    cdef bint tried[N_TP_OPTIONS]
    cdef double bound = INFINITY, flat = INFINITY
    for k in range(count):
        viable[k] = layouts[k].reason == OK
        tried[k] = False
        if viable[k]:
            bound = fmin(bound, layouts[k].latency_s)
            if layouts[k].pp == 1.0:
                flat = fmin(flat, layouts[k].latency_s)
    if mode == AS_PRACTITIONER and bound < INFINITY:
        bound = LATENCY_SLACK * (flat if flat < INFINITY else bound)
    else:
        bound = INFINITY
    if job[J_RATE] > 0.0:
        if mode != BY_LATENCY:
            while True:
                pick = -1
                for k in range(count):
                    if viable[k] and not tried[k] and layouts[k].latency_s <= bound and (
                            pick < 0 or layouts[k].score > layouts[pick].score
                            or (layouts[k].score == layouts[pick].score
                                and layouts[k].mem_per_chip < layouts[pick].mem_per_chip)):
                        pick = k
                if pick < 0:
                    break
                tried[pick] = True
                apply_load(job, chip, n, reps[pick], &layouts[pick])
                if layouts[pick].reason == OK:
                    best[0] = layouts[pick]
                    return
                viable[pick] = False
        for k in range(count):
            if viable[k] and not tried[k]:
                apply_load(job, chip, n, reps[k], &layouts[k])
    layout_init(best)
    for k in range(count):
        if layouts[k].reason == OK and layouts[k].latency_s <= bound and beats(&layouts[k], best):
            best[0] = layouts[k]
    if best.reason != OK:
        for k in range(count):
            if beats(&layouts[k], best):
                best[0] = layouts[k]
