# Included by _core.pyx: disaggregated serving, a prefill pool and a decode pool
# joined by a link (trnsched/perf/reference/pools.py is the readable twin).

cdef inline void link_speed(const double* cp, const double* cd, int link, double* bw,
                            double* lat) noexcept nogil:
    if link == FUSED:
        bw[0] = fmin(cp[C_SU_BW] * cp[C_EFF_NET], cd[C_SU_BW] * cd[C_EFF_NET])
        lat[0] = fmax(cp[C_SU_LAT], cd[C_SU_LAT])
    else:
        bw[0] = fmin(cp[C_SO_BW] * cp[C_EFF_NET], cd[C_SO_BW] * cd[C_EFF_NET])
        lat[0] = fmax(cp[C_SO_LAT], cd[C_SO_LAT])


cdef inline double pool_depth(const double* job, const double* chip, double tp, double kv_seq) noexcept nogil:
    cdef double usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    cdef double room = usable - kv_seq / fmin(tp, job[J_KV_HEADS])
    cdef double need = job[J_PARAMS] * job[J_WBYTES] / tp / room if room > 0.0 else INFINITY
    cdef double pp = pow2_at_least(need) if need <= job[J_LAYERS] else INFINITY
    return pp if tp * pp <= chip[C_DOMAIN] else INFINITY


cdef inline bint cheaper(double cost, double power, double best_cost, double best_power) noexcept nogil:
    return cost < best_cost or (cost == best_cost and power < best_power)


cdef int decode_pool(const double* job, const double* chip, double bw, Pools* out) noexcept nogil:
    cdef double rate = job[J_RATE], output = job[J_OUTPUT]
    cdef double kv_prompt = job[J_PROMPT] * job[J_LAYERS] * job[J_KV_DIM] * job[J_KV_BYTES], ingress
    cdef double kv_seq = (job[J_PROMPT] + output) * job[J_LAYERS] * job[J_KV_DIM] * job[J_KV_BYTES]
    cdef double usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    cdef double cap = job[J_SLO_TPOT] if job[J_SLO_TPOT] < INFINITY else SERVICE_TPOT_S
    cdef double best_cost = INFINITY, best_power = INFINITY, tp = 1.0, pp, weights_chip, kv_chip, most
    cdef double lo, hi, mid, n, capacity, replicas, lam, inflight, tpot, busy, chips, power, cost
    cdef int reason = MEMORY, k, it
    cdef Infer model
    for k in range(N_TP_OPTIONS):
        if tp > chip[C_DOMAIN] or tp > job[J_HEADS]:
            break
        pp = pool_depth(job, chip, tp, kv_seq)
        if pp < INFINITY:
            weights_chip = job[J_PARAMS] * job[J_WBYTES] / (tp * pp)
            kv_chip = kv_seq / (fmin(tp, job[J_KV_HEADS]) * pp)
            most = fmin(<double>MAX_BATCH, floor((usable - weights_chip) / kv_chip))
            infer_init(&model, job, chip, tp, pp, chip[C_DOMAIN])
            if most >= 1.0 and decode(&model, 1.0, NULL) > cap:
                if reason != OK:
                    reason = SLO_TPOT
            elif most >= 1.0:
                lo = 1.0
                hi = most
                if decode(&model, hi, NULL) <= cap:
                    lo = hi
                while hi - lo > 1.0:
                    mid = floor(0.5 * (lo + hi))
                    if decode(&model, mid, NULL) <= cap:
                        lo = mid
                    else:
                        hi = mid
                n = lo
                capacity = n / (output * decode(&model, n, NULL))
                ingress = kv_prompt / (tp * pp * bw)
                replicas = fmax(ceil(rate / (DECODE_UTIL * capacity)), ceil(rate * ingress / LINK_UTIL))
                lam = rate / replicas
                inflight = n
                for it in range(POOL_FIXED_POINT):
                    inflight = fmin(n, fmax(1.0, lam * output * decode(&model, inflight, NULL)))
                tpot = decode(&model, inflight, &busy)
                chips = replicas * tp * pp
                power = chips * (chip[C_IDLE_KW] + chip[C_HOST_KW] + chip[C_BUSY_KW] * busy)
                cost = chips * chip[C_PRICE_HR]
                if cheaper(cost, power, best_cost, best_power):
                    reason = OK
                    best_cost = cost
                    best_power = power
                    out.decode_tp = tp
                    out.decode_pp = pp
                    out.decode_replicas = replicas
                    out.decode_chips = chips
                    out.decode_batch = n
                    out.decode_util = lam / capacity
                    out.decode_power_kw = power
                    out.decode_mem_per_chip = weights_chip + n * kv_chip
                    out.tpot_s = tpot
                    out.kv_link_share = lam * ingress
        tp *= 2.0
    return reason


cdef int prefill_pool(const double* job, const double* chip, double bw, double lat, Pools* out) noexcept nogil:
    cdef double rate = job[J_RATE]
    cdef double kv_prompt = job[J_PROMPT] * job[J_LAYERS] * job[J_KV_DIM] * job[J_KV_BYTES]
    cdef double best_cost = INFINITY, best_power = INFINITY, tp = 1.0, pp, ttft0, t_pf, links, transfer
    cdef double wait, rho_max, replicas, rho, chips, power, cost, t_link, service, busy
    cdef double decode_share = out.kv_link_share
    cdef int reason = MEMORY, k
    cdef Infer model
    for k in range(N_TP_OPTIONS):
        if tp > chip[C_DOMAIN] or tp > job[J_HEADS]:
            break
        pp = pool_depth(job, chip, tp, kv_prompt)
        if pp < INFINITY:
            infer_init(&model, job, chip, tp, pp, chip[C_DOMAIN])
            ttft0 = infer_ttft(&model)
            t_pf = prefill_time(&model)
            links = fmin(tp * pp, out.decode_tp * out.decode_pp)
            t_link = kv_prompt / (links * bw)
            transfer = t_link + lat
            service = fmax(t_pf, t_link)
            wait = job[J_SLO_TTFT] - ttft0 - transfer
            if wait <= 0.0:
                if reason == MEMORY:
                    reason = SLO_TTFT
            else:
                rho_max = PREFILL_UTIL if wait == INFINITY else fmin(PREFILL_UTIL, 2.0 * wait / (service + 2.0 * wait))
                replicas = ceil(rate * service / rho_max)
                busy = rate * service / replicas
                rho = rate * t_pf / replicas
                chips = replicas * tp * pp
                power = chips * (chip[C_IDLE_KW] + chip[C_HOST_KW] + chip[C_BUSY_KW] * rho)
                cost = chips * chip[C_PRICE_HR]
                if cheaper(cost, power, best_cost, best_power):
                    reason = OK
                    best_cost = cost
                    best_power = power
                    out.prefill_tp = tp
                    out.prefill_pp = pp
                    out.prefill_replicas = replicas
                    out.prefill_chips = chips
                    out.prefill_util = rho
                    out.prefill_power_kw = power
                    out.prefill_mem_per_chip = (job[J_PARAMS] * job[J_WBYTES] / (tp * pp)
                                                + kv_prompt / (fmin(tp, job[J_KV_HEADS]) * pp))
                    out.kv_transfer_s = transfer
                    out.kv_link_share = fmax(decode_share, rate * t_link / replicas)
                    out.ttft_s = ttft0 + busy * service / (2.0 * (1.0 - busy)) + transfer
        tp *= 2.0
    return reason


cdef void pools_init(Pools* o) noexcept nogil:
    memset(o, 0, sizeof(Pools))
    o.reason = NO_LAYOUT


cdef void pools_one(const double* job, const double* cp, const double* cd, int link, Pools* out) noexcept nogil:
    cdef double bw, lat
    pools_init(out)
    if job[J_RATE] <= 0.0:
        out.reason = RATE
        return
    link_speed(cp, cd, link, &bw, &lat)
    out.reason = decode_pool(job, cd, bw, out)
    if out.reason != OK:
        return
    out.kv_bytes = job[J_PROMPT] * job[J_LAYERS] * job[J_KV_DIM] * job[J_KV_BYTES]
    out.reason = prefill_pool(job, cp, bw, lat, out)
    if out.reason != OK:
        return
    out.duration_h = job[J_DURATION_H]
    out.tokens_per_s = job[J_RATE] * job[J_OUTPUT]
    out.latency_s = out.ttft_s + job[J_OUTPUT] * out.tpot_s
    out.power_kw = out.prefill_power_kw + out.decode_power_kw
    out.energy_kwh = out.power_kw * out.duration_h
    out.cost_usd = (out.prefill_chips * cp[C_PRICE_HR] + out.decode_chips * cd[C_PRICE_HR]) * out.duration_h
