# Included by _core.pyx: the layout record's helpers, collectives and the small
# integer helpers (trnsched/perf/reference/common.py is the readable twin).

cdef inline void layout_init(Layout* o) noexcept nogil:
    o.reason = NO_LAYOUT
    o.score = -INFINITY
    o.tp = 0.0; o.pp = 0.0; o.dp = 0.0; o.ep = 0.0; o.recompute = 0.0
    o.step_time_s = 0.0; o.tokens_per_s = 0.0; o.mfu = 0.0; o.ttft_s = 0.0; o.tpot_s = 0.0; o.latency_s = 0.0
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


cdef inline double pow2_at_least(double x) noexcept nogil:
    cdef double p = 1.0
    while p < x:
        p *= 2.0
    return p


cdef inline double allreduce_time(double chips, double nbytes, double bw, double lat) noexcept nogil:
    if chips <= 1.0:
        return 0.0
    return 2.0 * (chips - 1.0) / chips * nbytes / bw + 2.0 * rounds(chips) * lat


cdef inline double hierarchical_allreduce(double group, double in_domain, double nbytes, double su_bw,
                                          double su_lat, double so_bw, double so_lat) noexcept nogil:
    return (allreduce_time(in_domain, nbytes, su_bw, su_lat)
            + allreduce_time(ceil(group / in_domain), nbytes / in_domain, so_bw, so_lat))


cdef inline double alltoall_time(double group, double in_domain, double token_bytes, double top_k,
                                 double su_bw, double su_lat, double so_bw, double so_lat) noexcept nogil:
    # Hierarchical dispatch (common.alltoall_time): once per remote domain over
    # the scale-out network, forwarded on the scale-up fabric; the fabrics overlap.
    cdef double domains, remote
    if group <= 1.0:
        return 0.0
    domains = ceil(group / in_domain)
    if domains > 1.0:
        remote = (domains - 1.0) * (1.0 - pow(1.0 - 1.0 / domains, top_k))
        return (fmax(token_bytes * top_k * (group - 1.0) / group / su_bw, token_bytes * remote / so_bw)
                + (in_domain - 1.0) * su_lat + (domains - 1.0) * so_lat)
    return token_bytes * top_k * (in_domain - 1.0) / group / su_bw + (in_domain - 1.0) * su_lat


cdef inline double gemm_params(const double* job, const double* chip) noexcept nogil:
    # Active parameters weighted by their GEMMs' speed (common.gemm_params).
    cdef double width = job[J_EXPERT_WIDTH]
    if width <= 0.0:
        return job[J_ACTIVE]
    return job[J_DENSE] + (job[J_ACTIVE] - job[J_DENSE]) * (width + chip[C_EXPERT_W0]) / width


cdef inline double memory_floor(const double* job) noexcept nogil:
    if job[J_KIND] == 0:
        return (STATE_BYTES + OPTIMIZER_BYTES) * job[J_PARAMS]
    return job[J_PARAMS] * job[J_WBYTES]


cdef inline double arithmetic(const double* job, const double* chip, double* eff) noexcept nogil:
    # Peak FLOP/s at the job's precision, and its sustained fraction in eff
    # (common.arithmetic): FP4 weights multiply at the FP8 rate where the chip has no FP4.
    if <int>job[J_PRECISION] == BF16:
        eff[0] = chip[C_EFF_BF16]
        return chip[C_PEAK_BF16]
    if <int>job[J_PRECISION] == FP4 and chip[C_PEAK_FP4] > 0.0:
        eff[0] = chip[C_EFF_FP4]
        return chip[C_PEAK_FP4]
    eff[0] = chip[C_EFF_FP8]
    return chip[C_PEAK_FP8]
