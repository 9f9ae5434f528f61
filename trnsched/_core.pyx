# The compiled scoring core: the formulas of trnsched/_reference.py over whole
# arrays of candidates, one nogil loop, no Python objects inside.  Keep the two
# in step; tests/test_core.py compares them on random and edge-case inputs.
# Directives are set in setup.py (one place).
from cython.parallel cimport prange
from libc.math cimport INFINITY, ceil, floor, log2, pow

import numpy as np

cimport numpy as cnp

cnp.import_array()

cdef enum:
    # job table (trnsched/_columns.py)
    J_KIND = 0
    J_PARAMS = 1
    J_ACTIVE = 2
    J_DENSE = 3
    J_LAYERS = 4
    J_HIDDEN = 5
    J_ATTN_DIM = 6
    J_KV_DIM = 7
    J_KV_HEADS = 8
    J_HEADS = 9
    J_EXPERTS = 10
    J_TOP_K = 11
    J_FP8 = 12
    J_SEQ_LEN = 13
    J_BATCH_SEQS = 14
    J_TOKENS = 15
    J_BATCH = 16
    J_PROMPT = 17
    J_OUTPUT = 18
    J_RATE = 19
    J_SLO_TTFT = 20
    J_SLO_TPOT = 21
    J_DURATION_H = 22
    J_DEADLINE_H = 23
    J_ARRIVAL_H = 24
    J_HINT_TP = 25
    J_HINT_PP = 26
    J_HINT_DP = 27
    J_HINT_EP = 28
    JOB_COLUMNS = 29
    # chip table
    C_PEAK_BF16 = 0
    C_PEAK_FP8 = 1
    C_HBM = 2
    C_HBM_BW = 3
    C_TDP = 4
    C_IDLE = 5
    C_DOMAIN = 6
    C_SU_BW = 7
    C_SU_LAT = 8
    C_SO_BW = 9
    C_SO_LAT = 10
    C_PRICE_HR = 11
    C_PUE = 12
    C_EFF_BF16 = 13
    C_EFF_FP8 = 14
    C_EFF_PREFILL = 15
    C_EFF_HBM = 16
    C_EFF_NET = 17
    C_GEMM_W0 = 18
    C_LAYER_OVERHEAD = 19
    C_REQUEST_OVERHEAD = 20
    C_MEM_RESERVE = 21
    CHIP_COLUMNS = 22
    # reason codes, in order of progress
    OK = 0
    NO_LAYOUT = 1
    MEMORY = 2
    BATCH = 3
    SLO_TTFT = 4
    SLO_TPOT = 5
    RATE = 6
    DEADLINE = 7
    N_TP_OPTIONS = 8
    MAX_BATCH = 512

cdef double ACT_BYTES_FULL = 34.0
cdef double ACT_BYTES_RECOMPUTE = 2.0
cdef double RECOMPUTE_FLOPS = 4.0 / 3.0
cdef double STATE_BYTES = 4.0
cdef double OPTIMIZER_BYTES = 12.0
cdef double DP_OVERLAP = 0.5


def layout_constants():
    """The numbers compiled in here, for the test that holds them to _columns.py."""
    return dict(J_HINT_EP=J_HINT_EP, JOB_COLUMNS=JOB_COLUMNS, C_MEM_RESERVE=C_MEM_RESERVE,
                CHIP_COLUMNS=CHIP_COLUMNS, DEADLINE=DEADLINE, MAX_BATCH=MAX_BATCH,
                N_TP_OPTIONS=N_TP_OPTIONS, ACT_BYTES_FULL=ACT_BYTES_FULL,
                ACT_BYTES_RECOMPUTE=ACT_BYTES_RECOMPUTE, RECOMPUTE_FLOPS=RECOMPUTE_FLOPS,
                STATE_BYTES=STATE_BYTES, OPTIMIZER_BYTES=OPTIMIZER_BYTES, DP_OVERLAP=DP_OVERLAP,
                J_KIND=J_KIND, J_SLO_TPOT=J_SLO_TPOT, C_PEAK_BF16=C_PEAK_BF16, C_GEMM_W0=C_GEMM_W0)


ctypedef struct Layout:
    int reason
    double score
    double tp, pp, dp, ep, recompute
    double step_time_s, tokens_per_s, mfu, ttft_s, tpot_s
    double batch, max_batch, replicas, replicas_needed
    double duration_h, power_kw, energy_kwh, cost_usd, mem_per_chip


cdef inline void layout_init(Layout* o) noexcept nogil:
    o.reason = NO_LAYOUT
    o.score = -INFINITY
    o.tp = 0.0; o.pp = 0.0; o.dp = 0.0; o.ep = 0.0; o.recompute = 0.0
    o.step_time_s = 0.0; o.tokens_per_s = 0.0; o.mfu = 0.0; o.ttft_s = 0.0; o.tpot_s = 0.0
    o.batch = 0.0; o.max_batch = 0.0; o.replicas = 0.0; o.replicas_needed = 0.0
    o.duration_h = 0.0; o.power_kw = 0.0; o.energy_kwh = 0.0; o.cost_usd = 0.0
    o.mem_per_chip = INFINITY


# Plain comparisons: libm's fmax/fmin are not inlined (NaN rules) and sit in the hot loop.
cdef inline double fmax(double a, double b) noexcept nogil:
    return a if a >= b else b


cdef inline double fmin(double a, double b) noexcept nogil:
    return a if a <= b else b


cdef inline int progress(int reason) noexcept nogil:
    return 99 if reason == OK else reason


cdef inline bint beats(const Layout* a, const Layout* b) noexcept nogil:
    cdef int pa = progress(a.reason), pb = progress(b.reason)
    if pa != pb:
        return pa > pb
    if a.score != b.score:
        return a.score > b.score
    return a.mem_per_chip < b.mem_per_chip


cdef inline double pow2_at_least(double x) noexcept nogil:
    cdef double p = 1.0
    while p < x:
        p *= 2.0
    return p


cdef inline double allreduce_time(double chips, double nbytes, double bw, double lat) noexcept nogil:
    if chips <= 1.0:
        return 0.0
    return 2.0 * (chips - 1.0) / chips * nbytes / bw + 2.0 * log2(chips) * lat


cdef inline double alltoall_time(double group, double in_domain, double nbytes, double su_bw,
                                 double su_lat, double so_bw, double so_lat) noexcept nogil:
    if group <= 1.0:
        return 0.0
    cdef double out = group - in_domain
    return (nbytes * (in_domain - 1.0) / group / su_bw + nbytes * out / group / so_bw
            + (in_domain - 1.0) * su_lat + out * so_lat)


cdef inline double experts_touched(double experts, double top_k, double tokens) noexcept nogil:
    if experts <= 1.0:
        return 1.0
    return 1.0 - pow(1.0 - top_k / experts, tokens)


cdef void train_layout(const double* job, const double* chip, double n, double per_domain,
                       double tp, int recompute, Layout* out) noexcept nogil:
    cdef double layers = job[J_LAYERS], hidden = job[J_HIDDEN]
    cdef double params = job[J_PARAMS], dense = job[J_DENSE]
    cdef double expert = params - dense, experts = job[J_EXPERTS]
    cdef double usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    cdef double act, fixed, room, room_ep, pp_need, pp, dp, ep, used, params_per_chip, mem
    cdef double micro_batches, peak, width, eff, seq, tokens_step, model_flops, t_compute, t_bubble
    cdef double su_bw, so_bw, su_lat, so_lat, passes, layer_passes, collectives, t_tp, t_pp, bw, lat
    cdef double grad_bytes, dp_in, dp_out, t_dp, t_dp_exposed, t_ep, ep_in, a2a_bytes, step, activity
    cdef bint fp8
    layout_init(out)
    out.tp = tp
    out.recompute = recompute

    act = (ACT_BYTES_RECOMPUTE if recompute else ACT_BYTES_FULL) * hidden / tp * job[J_SEQ_LEN] * layers
    fixed = OPTIMIZER_BYTES * params / n + act
    if job[J_HINT_PP] > 0:
        pp = job[J_HINT_PP]
    else:
        room = usable - fixed
        room_ep = room - STATE_BYTES * expert / n
        if room <= 0.0 or room_ep <= 0.0:
            pp_need = INFINITY
        else:
            pp_need = fmax(fmax(STATE_BYTES * (dense + expert / experts) / tp / room,
                                STATE_BYTES * dense / tp / room_ep), 1.0)
        pp = pow2_at_least(pp_need) if pp_need <= layers else INFINITY
    if pp > layers or tp * pp > n:
        out.reason = MEMORY
        out.pp = fmin(pp, layers)
        out.mem_per_chip = fixed + STATE_BYTES * (dense + expert / experts) / (tp * out.pp)
        return
    dp = floor(n / (tp * pp))
    if job[J_HINT_DP] > 0:
        if job[J_HINT_DP] > dp:
            return
        dp = job[J_HINT_DP]
    ep = fmin(experts, dp) if job[J_HINT_EP] <= 0 else job[J_HINT_EP]
    if ep > dp or ep > experts:
        return
    used = tp * pp * dp
    out.pp = pp
    out.dp = dp
    out.ep = ep

    params_per_chip = dense / (tp * pp) + expert / (tp * pp * ep)
    mem = STATE_BYTES * params_per_chip + OPTIMIZER_BYTES * params / used + act
    out.mem_per_chip = mem
    if mem > usable:
        out.reason = MEMORY
        return
    micro_batches = job[J_BATCH_SEQS] / dp
    if micro_batches < 1.0:
        out.reason = BATCH
        return

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
    su_lat = chip[C_SU_LAT]
    so_lat = chip[C_SO_LAT]
    passes = micro_batches + pp - 1.0
    layer_passes = passes * layers / pp
    collectives = 6.0 if recompute else 4.0

    t_tp = layer_passes * collectives * allreduce_time(tp, seq * hidden * 2.0, su_bw, su_lat)

    t_pp = 0.0
    if pp > 1.0:
        if tp * pp > per_domain:
            bw = so_bw
            lat = so_lat
        else:
            bw = su_bw
            lat = su_lat
        t_pp = 2.0 * passes * (seq * hidden * 2.0 / tp / bw + lat)

    grad_bytes = 2.0 * params_per_chip
    dp_in = fmax(1.0, fmin(dp, floor(per_domain / (tp * pp))))
    dp_out = ceil(dp / dp_in)
    t_dp = (allreduce_time(dp_in, grad_bytes, su_bw, su_lat)
            + allreduce_time(dp_out, grad_bytes / dp_in, so_bw, so_lat))
    t_dp_exposed = fmax(0.0, t_dp - DP_OVERLAP * t_compute)

    t_ep = 0.0
    if ep > 1.0:
        ep_in = fmax(1.0, fmin(ep, dp_in))
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
        return
    out.reason = OK


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


cdef void infer_layout(const double* job, const double* chip, double n, double per_domain,
                       double tp, Layout* out) noexcept nogil:
    cdef double usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    cdef double wbytes = 1.0 if job[J_FP8] > 0.0 else 2.0
    cdef double weights = job[J_PARAMS] * wbytes
    cdef double kv_seq = (job[J_PROMPT] + job[J_OUTPUT]) * job[J_LAYERS] * job[J_KV_DIM] * wbytes
    cdef double kv_split = fmin(tp, job[J_KV_HEADS])
    cdef double room, pp_need, pp, replicas, free, max_batch, wanted, ttft, step, busy = 0.0
    cdef double lo, hi, mid, slo_tpot, per_replica, total, demand, load, activity, excess
    cdef Infer model
    layout_init(out)
    out.tp = tp
    if job[J_HINT_PP] > 0:
        pp = job[J_HINT_PP]
    else:
        room = usable - kv_seq / kv_split
        pp_need = weights / tp / room if room > 0.0 else INFINITY
        pp = pow2_at_least(pp_need) if pp_need <= job[J_LAYERS] else INFINITY
    if pp > job[J_LAYERS] or tp * pp > n:
        out.reason = MEMORY
        out.pp = fmin(pp, job[J_LAYERS])
        out.mem_per_chip = weights / (tp * out.pp) + kv_seq / kv_split
        return
    replicas = floor(n / (tp * pp))
    if job[J_HINT_DP] > 0:
        if job[J_HINT_DP] > replicas:
            return
        replicas = job[J_HINT_DP]
    out.pp = pp
    out.dp = replicas
    out.replicas = replicas

    free = usable - weights / (tp * pp)
    if free > 0.0:
        max_batch = fmin(<double>MAX_BATCH, floor(free * kv_split / kv_seq))
    else:
        max_batch = 0.0
    out.max_batch = max_batch
    wanted = job[J_BATCH] if job[J_BATCH] > 0 else fmax(max_batch, 1.0)
    out.batch = wanted
    out.mem_per_chip = weights / (tp * pp) + wanted * kv_seq / kv_split
    if wanted > max_batch:
        out.reason = MEMORY
        return

    infer_init(&model, job, chip, tp, pp, per_domain)
    ttft = infer_ttft(&model)
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
    out.batch = wanted
    out.ttft_s = ttft
    out.tpot_s = step
    per_replica = infer_throughput(&model, wanted, step)
    total = replicas * per_replica
    out.tokens_per_s = total
    demand = job[J_RATE] * job[J_OUTPUT]
    out.replicas_needed = ceil(demand / per_replica)
    load = fmin(1.0, demand / total) if demand > 0.0 else 1.0
    out.duration_h = job[J_DURATION_H]
    activity = load * busy
    out.power_kw = n * (chip[C_IDLE] + (chip[C_TDP] - chip[C_IDLE]) * activity) * chip[C_PUE] / 1000.0
    out.energy_kwh = out.power_kw * out.duration_h
    out.cost_usd = n * chip[C_PRICE_HR] * out.duration_h
    excess = fmax(ttft / job[J_SLO_TTFT], step / slo_tpot)
    if ttft > job[J_SLO_TTFT]:
        out.reason = SLO_TTFT
        out.score = -excess
    elif step > slo_tpot:
        out.reason = SLO_TPOT
        out.score = -excess
    elif total < demand:
        out.reason = RATE
        out.score = total
    else:
        out.reason = OK
        out.score = total


cdef Layout score_one(const double* job, const double* chip, double chips, double domains) noexcept nogil:
    cdef Layout best, cand, again
    cdef double per_domain, tp, hint_tp = job[J_HINT_TP]
    cdef int k
    layout_init(&best)
    if chips < 1.0 or domains < 1.0:
        return best
    per_domain = fmin(chip[C_DOMAIN], ceil(chips / domains))
    tp = 1.0
    for k in range(N_TP_OPTIONS):
        if tp > per_domain or tp > chips or tp > job[J_HEADS]:
            break
        if hint_tp <= 0 or tp == hint_tp:
            if job[J_KIND] == 0:
                train_layout(job, chip, chips, per_domain, tp, 0, &cand)
                if cand.reason == MEMORY:
                    train_layout(job, chip, chips, per_domain, tp, 1, &again)
                    if beats(&again, &cand):
                        cand = again
            else:
                infer_layout(job, chip, chips, per_domain, tp, &cand)
            if beats(&cand, &best):
                best = cand
            elif best.reason == OK and cand.reason == OK:
                break
        tp *= 2.0
    return best


def score(const double[:, ::1] job_table not None, const double[:, ::1] chip_table not None,
          const cnp.intp_t[::1] job_index not None, const cnp.intp_t[::1] chip_index not None,
          const cnp.int64_t[::1] chips not None, const cnp.int64_t[::1] domains not None,
          int threads=1):
    """Score every candidate; returns {output name: array} (see _columns.OUTPUTS)."""
    cdef Py_ssize_t n = job_index.shape[0], i
    if job_table.shape[1] != JOB_COLUMNS or chip_table.shape[1] != CHIP_COLUMNS:
        raise ValueError(f"tables must have {JOB_COLUMNS} job and {CHIP_COLUMNS} chip columns")
    if chip_index.shape[0] != n or chips.shape[0] != n or domains.shape[0] != n:
        raise ValueError("candidate arrays must all have the same length")
    if n and (np.min(job_index) < 0 or np.max(job_index) >= job_table.shape[0]
              or np.min(chip_index) < 0 or np.max(chip_index) >= chip_table.shape[0]):
        raise IndexError("job_index or chip_index out of range")
    if threads < 1:
        raise ValueError("threads must be >= 1")

    feasible_a = np.empty(n, dtype=np.uint8)
    reason_a = np.empty(n, dtype=np.int8)
    names = ("tp", "pp", "dp", "ep", "recompute", "step_time_s", "tokens_per_s", "mfu", "ttft_s",
             "tpot_s", "batch", "max_batch", "replicas", "replicas_needed", "duration_h", "power_kw",
             "energy_kwh", "cost_usd", "mem_per_chip")
    values_a = np.empty((len(names), n), dtype=np.float64)
    cdef unsigned char[::1] feasible = feasible_a
    cdef signed char[::1] reason = reason_a
    cdef double[:, ::1] v = values_a
    cdef Layout best

    for i in prange(n, nogil=True, schedule="static", num_threads=threads):
        best = score_one(&job_table[job_index[i], 0], &chip_table[chip_index[i], 0],
                         <double>chips[i], <double>domains[i])
        feasible[i] = 1 if best.reason == OK else 0
        reason[i] = <signed char>best.reason
        v[0, i] = best.tp
        v[1, i] = best.pp
        v[2, i] = best.dp
        v[3, i] = best.ep
        v[4, i] = best.recompute
        v[5, i] = best.step_time_s
        v[6, i] = best.tokens_per_s
        v[7, i] = best.mfu
        v[8, i] = best.ttft_s
        v[9, i] = best.tpot_s
        v[10, i] = best.batch
        v[11, i] = best.max_batch
        v[12, i] = best.replicas
        v[13, i] = best.replicas_needed
        v[14, i] = best.duration_h
        v[15, i] = best.power_kw
        v[16, i] = best.energy_kwh
        v[17, i] = best.cost_usd
        v[18, i] = best.mem_per_chip

    out = {"feasible": feasible_a, "reason": reason_a}
    for k, name in enumerate(names):
        out[name] = values_a[k]
    return out
