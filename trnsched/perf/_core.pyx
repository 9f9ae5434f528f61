# The compiled scoring core: the formulas of trnsched/perf/reference.py over
# whole arrays of candidates, one nogil loop, no Python objects inside.  Keep the
# two in step; tests/test_core.py compares them on random and edge-case inputs.
# The column layout, reason codes and the Layout struct are declared in
# _core.pxd; directives are set in setup.py (one place each).
from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc
from libc.math cimport INFINITY, ceil, floor, pow

import numpy as np

cimport numpy as cnp

from trnsched.perf import constants

cnp.import_array()

# The modelling constants, as C doubles read once from constants.py.
cdef double ACT_BYTES_FULL = constants.ACT_BYTES_FULL
cdef double ACT_BYTES_RECOMPUTE = constants.ACT_BYTES_RECOMPUTE
cdef double RECOMPUTE_FLOPS = constants.RECOMPUTE_FLOPS
cdef double STATE_BYTES = constants.STATE_BYTES
cdef double OPTIMIZER_BYTES = constants.OPTIMIZER_BYTES
cdef double DP_OVERLAP = constants.DP_OVERLAP
cdef double VIRTUAL_MAX = constants.VIRTUAL_MAX
cdef double CHUNK_LAYERS_MIN = constants.CHUNK_LAYERS_MIN

# The numpy dtype of a Layout (fields, offsets and padding as the C compiler laid
# them out): score() returns one record per candidate.
cdef Layout _probe
LAYOUT_DTYPE = np.asarray(<Layout[:1]> &_probe).dtype


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


cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


cdef inline double rounds(double chips) noexcept nogil:
    # ceil(log2(chips)) from the leading zeros of chips - 1: the reference's doubling
    # loop without its data-dependent trip count.  Chip counts are whole numbers.
    if chips <= 1.0:
        return 0.0
    return <double>(64 - __builtin_clzll(<unsigned long long>ceil(chips) - 1))


cdef inline double pow2_at_most(double x) noexcept nogil:
    # Largest power of two <= x (x >= 1): the top set bit of floor(x).
    return <double>(1ULL << (63 - __builtin_clzll(<unsigned long long>floor(x))))


cdef inline double pow2_at_least(double x) noexcept nogil:
    cdef double p = 1.0
    while p < x:
        p *= 2.0
    return p


cdef inline double allreduce_time(double chips, double nbytes, double bw, double lat) noexcept nogil:
    if chips <= 1.0:
        return 0.0
    return 2.0 * (chips - 1.0) / chips * nbytes / bw + 2.0 * rounds(chips) * lat


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


cdef inline double memory_floor(const double* job) noexcept nogil:
    if job[J_KIND] == 0:
        return (STATE_BYTES + OPTIMIZER_BYTES) * job[J_PARAMS]
    return job[J_PARAMS] * (1.0 if job[J_FP8] > 0.0 else 2.0)


ctypedef struct TrainSetup:
    double tp, recompute, act, act_full, act_min, state_all, state_dense, model_flops, peak
    double compute_work, tp_allreduce, hop_su, hop_so, a2a_bytes, hours_per_step


cdef void train_setup(const double* job, const double* chip, double tp, int recompute,
                      TrainSetup* s) noexcept nogil:
    cdef double layers = job[J_LAYERS], hidden = job[J_HIDDEN], seq = job[J_SEQ_LEN]
    cdef double dense = job[J_DENSE]
    cdef double expert = job[J_PARAMS] - dense
    cdef bint fp8 = job[J_FP8] > 0.0
    cdef double width = hidden / tp, eff, su_bw, so_bw
    s.tp = tp
    s.recompute = recompute
    s.act_full = ACT_BYTES_FULL * hidden / tp * seq * layers
    s.act_min = ACT_BYTES_RECOMPUTE * hidden / tp * seq * layers
    s.act = s.act_min if recompute else s.act_full
    s.state_all = STATE_BYTES * (dense + expert / job[J_EXPERTS]) / tp
    s.state_dense = STATE_BYTES * dense / tp
    s.peak = chip[C_PEAK_FP8] if fp8 else chip[C_PEAK_BF16]
    eff = (chip[C_EFF_FP8] if fp8 else chip[C_EFF_BF16]) * width / (width + chip[C_GEMM_W0])
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
    out.power_kw = n * (chip[C_IDLE_KW] + chip[C_BUSY_KW] * activity)
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


ctypedef struct ReplicaCache:
    # What depends on the job, the chip type and tp but never on the chip count:
    # candidates arrive grouped by job and chip type, so consecutive ones reuse it.
    # Replicas also depend on whether their pipeline crosses domains (checked on use).
    Py_ssize_t job, chip
    bint ready[N_TP_OPTIONS]
    Replica rep[N_TP_OPTIONS]
    bint train_ready[N_TP_OPTIONS][2]
    TrainSetup train[N_TP_OPTIONS][2]


cdef void score_one(const double* job, const double* chip, double chips, double domains,
                    Py_ssize_t job_id, Py_ssize_t chip_id, ReplicaCache* cache, Layout* slots) noexcept nogil:
    """Leaves the best layout in slots[0]; slots[1] and slots[2] are scratch.  Pointers
    swap instead of copying the struct."""
    cdef Layout* best = &slots[0]
    cdef Layout* cand = &slots[1]
    cdef Layout* spare = &slots[2]
    cdef Layout* tmp
    cdef double per_domain, tp, floor_bytes, hint_tp = job[J_HINT_TP]
    cdef int k
    layout_init(best)
    if chips >= 1.0 and domains >= 1.0:
        floor_bytes = memory_floor(job) / chips
        if floor_bytes > chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE]):
            best.reason = MEMORY
            best.mem_per_chip = floor_bytes
        else:
            per_domain = fmin(chip[C_DOMAIN], ceil(chips / domains))
            if cache.job != job_id or cache.chip != chip_id:
                cache.job = job_id
                cache.chip = chip_id
                for k in range(N_TP_OPTIONS):
                    cache.ready[k] = False
                    cache.train_ready[k][0] = False
                    cache.train_ready[k][1] = False
            tp = 1.0
            for k in range(N_TP_OPTIONS):
                if tp > per_domain or tp > chips or tp > job[J_HEADS]:
                    break
                if hint_tp <= 0 or tp == hint_tp:
                    if job[J_KIND] == 0:
                        if not cache.train_ready[k][0]:
                            train_setup(job, chip, tp, 0, &cache.train[k][0])
                            cache.train_ready[k][0] = True
                        if best.reason == OK and train_floor(job, &cache.train[k][0], chips) > -best.score * (1.0 + 1e-12):
                            # No layout at this tp or above can be faster: skipping them
                            # leaves the reference's answer unchanged.
                            break
                        train_layout(job, chip, chips, per_domain, &cache.train[k][0], cand)
                        if cand.reason == MEMORY:
                            if not cache.train_ready[k][1]:
                                train_setup(job, chip, tp, 1, &cache.train[k][1])
                                cache.train_ready[k][1] = True
                            train_layout(job, chip, chips, per_domain, &cache.train[k][1], spare)
                            if beats(spare, cand):
                                tmp = cand; cand = spare; spare = tmp
                    else:
                        if not cache.ready[k] or cache.rep[k].crosses != (tp * cache.rep[k].pp > per_domain):
                            replica_init(job, chip, per_domain, tp, &cache.rep[k])
                            cache.ready[k] = True
                        infer_layout(job, chip, chips, &cache.rep[k], cand)
                    if beats(cand, best):
                        tmp = best; best = cand; cand = tmp
                    elif best.reason == OK and cand.reason == OK and cand.recompute == 0.0:
                        break
                tp *= 2.0
    if best != &slots[0]:
        slots[0] = best[0]


def score(const double[:, ::1] job_table not None, const double[:, ::1] chip_table not None,
          const cnp.intp_t[::1] job_index not None, const cnp.intp_t[::1] chip_index not None,
          const cnp.int64_t[::1] chips not None, const cnp.int64_t[::1] domains not None,
          int threads=1, out=None):
    """Score every candidate; returns (records, feasible): one Layout record per
    candidate, as a numpy array of LAYOUT_DTYPE, and reason == OK as uint8.

    `out`, the (records, feasible) of an earlier call with at least as many
    candidates, is reused instead of allocating (fresh memory costs page faults
    that rival the scoring itself); views of its first n rows are returned."""
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

    if out is not None and out[0].shape[0] >= n:
        records, feasible_a = out[0][:n], out[1][:n]
    else:
        records, feasible_a = np.empty(n, dtype=LAYOUT_DTYPE), np.empty(n, dtype=np.uint8)
    cdef Layout[::1] layouts = records
    cdef unsigned char[::1] feasible = feasible_a
    cdef Layout* best
    cdef ReplicaCache* cache

    with nogil, parallel(num_threads=threads):
        cache = <ReplicaCache*> malloc(sizeof(ReplicaCache) + 3 * sizeof(Layout))
        if cache == NULL:
            with gil:
                raise MemoryError()
        cache.job = -1
        for i in prange(n, schedule="static"):
            best = <Layout*> (cache + 1)
            score_one(&job_table[job_index[i], 0], &chip_table[chip_index[i], 0],
                      <double>chips[i], <double>domains[i], job_index[i], chip_index[i], cache, best)
            layouts[i] = best[0]
            feasible[i] = best.reason == OK
        free(cache)
    return records, feasible_a
