# Included by _core.pyx: inference layouts (trnsched/perf/reference/serving.py
# is the readable twin).

ctypedef struct Infer:
    const double* job
    const double* chip
    double tp, pp, wbytes, peak, eff, su_bw, hbm_bw, pp_bw, pp_lat, kv_split


cdef inline void infer_init(Infer* m, const double* job, const double* chip, double tp, double pp,
                            double per_domain) noexcept nogil:
    cdef bint fp8 = job[J_FP8] > 0.0
    cdef double width = job[J_HIDDEN] / tp
    m.job = job
    m.chip = chip
    m.tp = tp
    m.pp = pp
    m.wbytes = 1.0 if fp8 else 2.0
    m.peak = chip[C_PEAK_FP8] if fp8 else chip[C_PEAK_BF16]
    m.eff = (chip[C_EFF_FP8] if fp8 else chip[C_EFF_BF16]) * width / (width + chip[C_GEMM_W0])
    m.su_bw = chip[C_SU_BW] * chip[C_EFF_NET]
    m.hbm_bw = chip[C_HBM_BW] * chip[C_EFF_HBM]
    if tp * pp > per_domain:
        m.pp_bw = chip[C_SO_BW] * chip[C_EFF_NET]
        m.pp_lat = chip[C_SO_LAT]
    else:
        m.pp_bw = chip[C_SU_BW] * chip[C_EFF_NET]
        m.pp_lat = chip[C_SU_LAT]
    m.kv_split = fmin(tp, job[J_KV_HEADS])


cdef inline double weights_read(const Infer* m, double tokens) noexcept nogil:
    cdef const double* j = m.job
    cdef double expert = j[J_PARAMS] - j[J_DENSE]
    return (j[J_DENSE] + expert * experts_touched(j[J_EXPERTS], j[J_TOP_K], tokens)) * m.wbytes


cdef inline double infer_collectives(const Infer* m, double tokens) noexcept nogil:
    cdef const double* j = m.job
    cdef double nbytes = tokens * j[J_HIDDEN] * 2.0
    cdef double lat = m.chip[C_SU_LAT]
    cdef double per_layer, hops
    if j[J_EXPERTS] > 1.0:
        per_layer = (allreduce_time(m.tp, nbytes, m.su_bw, lat)
                     + 2.0 * alltoall_time(m.tp, m.tp, nbytes * j[J_TOP_K], m.su_bw, lat, m.su_bw, lat))
    else:
        per_layer = 2.0 * allreduce_time(m.tp, nbytes, m.su_bw, lat)
    hops = (m.pp - 1.0) * (nbytes / m.pp_bw + m.pp_lat)
    return j[J_LAYERS] * per_layer + hops


cdef inline double infer_tpot(const Infer* m, double batch, double* busy_share) noexcept nogil:
    cdef const double* j = m.job
    cdef double ctx = j[J_PROMPT] + 0.5 * j[J_OUTPUT]
    cdef double flops = batch * (2.0 * j[J_ACTIVE] + 4.0 * j[J_LAYERS] * ctx * j[J_ATTN_DIM])
    cdef double t_compute = flops / (m.tp * m.peak * m.eff)
    cdef double kv = batch * ctx * j[J_LAYERS] * j[J_KV_DIM] * m.wbytes / m.kv_split
    cdef double t_memory = (weights_read(m, batch) / m.tp + kv) / m.hbm_bw
    cdef double busy = fmax(t_compute, t_memory)
    cdef double step = busy + infer_collectives(m, batch) + j[J_LAYERS] * m.chip[C_LAYER_OVERHEAD]
    if busy_share != NULL:
        busy_share[0] = busy / step
    return step


cdef inline double prefill_flops(const Infer* m) noexcept nogil:
    cdef const double* j = m.job
    cdef double p = j[J_PROMPT]
    return 2.0 * j[J_ACTIVE] * p + 2.0 * j[J_LAYERS] * p * p * j[J_ATTN_DIM]


cdef inline double infer_ttft(const Infer* m) noexcept nogil:
    cdef const double* j = m.job
    cdef double p = j[J_PROMPT]
    cdef double t_compute = prefill_flops(m) / (m.tp * m.peak * m.eff * m.chip[C_EFF_PREFILL])
    cdef double t_memory = weights_read(m, p) / m.tp / m.hbm_bw
    return (fmax(t_compute, t_memory) + infer_collectives(m, p)
            + j[J_LAYERS] * m.chip[C_LAYER_OVERHEAD] + m.chip[C_REQUEST_OVERHEAD])


cdef inline double infer_throughput(const Infer* m, double batch, double step) noexcept nogil:
    cdef double t_prefill = prefill_flops(m) / (m.tp * m.pp * m.peak * m.eff * m.chip[C_EFF_PREFILL])
    return 1.0 / (step / (m.pp * batch) + t_prefill / m.job[J_OUTPUT])


ctypedef struct Replica:
    double tp, pp, weights_chip, kv_seq, kv_split, max_batch, batch, mem_per_chip
    double ttft, tpot, busy, per_replica, need, excess
    bint fits, crosses      # crosses: a pipeline hop leaves the scale-up domain


cdef void replica_init(const double* job, const double* chip, double per_domain, double tp,
                       Replica* r) noexcept nogil:
    cdef double usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    cdef double wbytes = 1.0 if job[J_FP8] > 0.0 else 2.0
    cdef double weights = job[J_PARAMS] * wbytes
    cdef double room, pp_need, pp, free, wanted, step, busy = 0.0, lo, hi, mid, slo_tpot
    cdef Infer model
    r.tp = tp
    r.kv_seq = (job[J_PROMPT] + job[J_OUTPUT]) * job[J_LAYERS] * job[J_KV_DIM] * wbytes
    r.kv_split = fmin(tp, job[J_KV_HEADS])
    if job[J_HINT_PP] > 0:
        pp = job[J_HINT_PP]
    else:
        room = usable - r.kv_seq / r.kv_split
        pp_need = weights / tp / room if room > 0.0 else INFINITY
        pp = pow2_at_least(pp_need) if pp_need <= job[J_LAYERS] else INFINITY
    r.pp = pp
    r.crosses = tp * pp > per_domain
    r.weights_chip = weights / (tp * fmin(pp, job[J_LAYERS]))
    r.max_batch = 0.0
    r.batch = 0.0
    r.ttft = 0.0
    r.tpot = 0.0
    r.busy = 0.0
    r.per_replica = 0.0
    r.need = 0.0
    r.excess = 0.0
    r.fits = False
    r.mem_per_chip = r.weights_chip + r.kv_seq / r.kv_split
    if pp > job[J_LAYERS]:
        return

    free = usable - r.weights_chip
    if free > 0.0:
        r.max_batch = fmin(<double>MAX_BATCH, floor(free * r.kv_split / r.kv_seq))
    wanted = job[J_BATCH] if job[J_BATCH] > 0 else fmax(r.max_batch, 1.0)
    r.batch = wanted
    r.mem_per_chip = r.weights_chip + wanted * r.kv_seq / r.kv_split
    r.fits = wanted <= r.max_batch
    if not r.fits:
        return

    infer_init(&model, job, chip, tp, pp, per_domain)
    r.ttft = infer_ttft(&model)
    step = infer_tpot(&model, wanted, &busy)
    slo_tpot = job[J_SLO_TPOT]
    if job[J_BATCH] <= 0 and step > slo_tpot:
        lo = 1.0
        hi = wanted
        if infer_tpot(&model, lo, NULL) <= slo_tpot:
            while hi - lo > 1.0:
                mid = floor(0.5 * (lo + hi))
                if infer_tpot(&model, mid, NULL) <= slo_tpot:
                    lo = mid
                else:
                    hi = mid
            wanted = lo
        else:
            wanted = 1.0
        step = infer_tpot(&model, wanted, &busy)
    r.batch = wanted
    r.tpot = step
    r.busy = busy
    r.per_replica = infer_throughput(&model, wanted, step)
    r.need = job[J_RATE] * job[J_OUTPUT] / r.per_replica
    r.excess = fmax(r.ttft / job[J_SLO_TTFT], r.tpot / job[J_SLO_TPOT])


cdef void infer_layout(const double* job, const double* chip, double n, const Replica* rep,
                       Layout* out) noexcept nogil:
    cdef double tp = rep.tp, pp = rep.pp, replicas, total, load, activity
    layout_init(out)
    out.tp = tp
    if pp > job[J_LAYERS] or tp * pp > n:
        out.reason = MEMORY
        out.pp = fmin(pp, job[J_LAYERS])
        out.mem_per_chip = rep.weights_chip + rep.kv_seq / rep.kv_split
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

    out.ttft_s = rep.ttft
    out.tpot_s = rep.tpot
    total = replicas * rep.per_replica
    out.tokens_per_s = total
    out.replicas_needed = ceil(rep.need)
    load = fmin(1.0, rep.need / replicas) if rep.need > 0.0 else 1.0
    out.duration_h = job[J_DURATION_H]
    activity = load * rep.busy
    out.power_kw = n * (chip[C_IDLE_KW] + chip[C_BUSY_KW] * activity)
    out.energy_kwh = out.power_kw * out.duration_h
    out.cost_usd = n * chip[C_PRICE_HR] * out.duration_h
    if rep.ttft > job[J_SLO_TTFT]:
        out.reason = SLO_TTFT
        out.score = -rep.excess
    elif rep.tpot > job[J_SLO_TPOT]:
        out.reason = SLO_TPOT
        out.score = -rep.excess
    elif rep.need > replicas:
        out.reason = RATE
        out.score = total
    else:
        out.reason = OK
        out.score = total
