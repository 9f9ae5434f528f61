"""The formulas of trnsched/perf/reference.py, vectorised over candidates with numpy.

It exists to measure what the compiled core buys over idiomatic numpy
(bench/bench_core.py), so it lives here and not in the package, and is held to
the compiled core by tests/test_core.py.  Every early `return` of the reference
becomes a mask here; quantities are computed for all rows and only kept where
the reference would have reached them.
"""
from __future__ import annotations

import numpy as np

from trnsched.perf.columns import (
    BATCH, C_BUSY_KW, C_DOMAIN, C_EFF_BF16, C_EFF_FP8, C_EFF_HBM, C_EFF_NET, C_EFF_PREFILL, C_GEMM_W0, C_HBM,
    C_HBM_BW, C_IDLE_KW, C_LAYER_OVERHEAD, C_MEM_RESERVE, C_PEAK_BF16, C_PEAK_FP8, C_PRICE_HR,
    C_REQUEST_OVERHEAD, C_SO_BW, C_SO_LAT, C_SU_BW, C_SU_LAT, DEADLINE, J_ACTIVE, J_ARRIVAL_H, J_ATTN_DIM,
    J_BATCH, J_BATCH_SEQS, J_DEADLINE_H, J_DENSE, J_DURATION_H, J_EXPERTS, J_FP8, J_HEADS, J_HIDDEN,
    J_HINT_DP, J_HINT_EP, J_HINT_PP, J_HINT_TP, J_KIND, J_KV_DIM, J_KV_HEADS, J_LAYERS, J_OUTPUT, J_PARAMS,
    J_PROMPT, J_RATE, J_SEQ_LEN, J_SLO_TPOT, J_SLO_TTFT, J_TOKENS, J_TOP_K, MAX_BATCH, MEMORY, NO_LAYOUT, OK,
    OUTPUTS, RATE, SLO_TPOT, SLO_TTFT, TP_OPTIONS,
)
from trnsched.perf.constants import (
    ACT_BYTES_FULL, ACT_BYTES_RECOMPUTE, CHUNK_LAYERS_MIN, DP_OVERLAP, OPTIMIZER_BYTES, RECOMPUTE_FLOPS,
    STATE_BYTES, VIRTUAL_MAX,
)

INF = np.inf
FIELDS = OUTPUTS + ("score",)


def _empty(size: int) -> dict[str, np.ndarray]:
    out = {k: np.zeros(size) for k in FIELDS}
    out["reason"] = np.full(size, float(NO_LAYOUT))
    out["score"] = np.full(size, -INF)
    out["mem_per_chip"] = np.full(size, INF)
    return out


def _take(out: dict, mask: np.ndarray, **values) -> None:
    for k, v in values.items():
        out[k] = np.where(mask, v, out[k])


def _progress(reason):
    return np.where(reason == OK, 99.0, reason)


def _beats(a: dict, b: dict) -> np.ndarray:
    pa, pb = _progress(a["reason"]), _progress(b["reason"])
    return np.where(pa != pb, pa > pb,
                    np.where(a["score"] != b["score"], a["score"] > b["score"],
                             a["mem_per_chip"] < b["mem_per_chip"]))


def _pow2_at_least(x):
    x = np.where(np.isfinite(x), x, 1.0)
    p = np.ones_like(x)
    while True:
        short = p < x
        if not short.any():
            return p
        p = np.where(short, p * 2.0, p)


def _rounds(chips):
    k, p = np.zeros_like(chips), np.ones_like(chips)
    while True:
        short = p < chips
        if not short.any():
            return k
        p = np.where(short, p * 2.0, p)
        k = np.where(short, k + 1.0, k)


def _pow2_at_most(x):
    x = np.maximum(x, 1.0)
    p = np.ones_like(x)
    while True:
        up = p * 2.0 <= x
        if not up.any():
            return p
        p = np.where(up, p * 2.0, p)


def _allreduce(chips, nbytes, bw, lat):
    safe = np.maximum(chips, 1.0)
    t = 2.0 * (safe - 1.0) / safe * nbytes / bw + 2.0 * _rounds(safe) * lat
    return np.where(chips <= 1.0, 0.0, t)


def _alltoall(group, in_domain, nbytes, su_bw, su_lat, so_bw, so_lat):
    out = group - in_domain
    t = (nbytes * (in_domain - 1.0) / group / su_bw + nbytes * out / group / so_bw
         + (in_domain - 1.0) * su_lat + out * so_lat)
    return np.where(group <= 1.0, 0.0, t)


def _touched(experts, top_k, tokens):
    return np.where(experts <= 1.0, 1.0, 1.0 - (1.0 - top_k / experts) ** tokens)


def _train(j, c, n, per_domain, tp, recompute):
    size = len(n)
    out = _empty(size)
    out["tp"][:] = tp
    layers, hidden, params, dense = j[:, J_LAYERS], j[:, J_HIDDEN], j[:, J_PARAMS], j[:, J_DENSE]
    expert, experts = params - dense, j[:, J_EXPERTS]
    usable = c[:, C_HBM] * (1.0 - c[:, C_MEM_RESERVE])
    act_full = ACT_BYTES_FULL * hidden / tp * j[:, J_SEQ_LEN] * layers
    act_min = ACT_BYTES_RECOMPUTE * hidden / tp * j[:, J_SEQ_LEN] * layers
    act = act_min if recompute else act_full
    fixed = OPTIMIZER_BYTES * params / n + act
    room = usable - fixed
    room_ep = room - STATE_BYTES * expert / n
    pp_need = np.where((room <= 0.0) | (room_ep <= 0.0), INF,
                       np.maximum(np.maximum(STATE_BYTES * (dense + expert / experts) / tp / room,
                                             STATE_BYTES * dense / tp / room_ep), 1.0))
    pp = np.where(pp_need <= layers, _pow2_at_least(pp_need), INF)
    pp = np.where(j[:, J_HINT_PP] > 0, j[:, J_HINT_PP], pp)
    fail_pp = (pp > layers) | (tp * pp > n)
    pp_shown = np.minimum(pp, layers)
    _take(out, fail_pp, reason=MEMORY, pp=pp_shown,
          mem_per_chip=fixed + STATE_BYTES * (dense + expert / experts) / (tp * pp_shown))
    live = ~fail_pp
    pp = np.where(live, pp, 1.0)

    dp = np.floor(n / (tp * pp))
    hint_dp = j[:, J_HINT_DP]
    live &= ~((hint_dp > 0) & (hint_dp > dp))
    dp = np.where(hint_dp > 0, hint_dp, dp)
    dp = np.maximum(dp, 1.0)
    used = tp * pp * dp
    dp_in = np.maximum(1.0, np.minimum(dp, np.floor(per_domain / (tp * pp))))
    fixed_used = OPTIMIZER_BYTES * params / used + act
    hint_ep = j[:, J_HINT_EP]
    local_ep = _pow2_at_most(np.minimum(experts, dp_in))
    spills = STATE_BYTES * (dense + expert / local_ep) / (tp * pp) + fixed_used > usable
    ep = np.where(hint_ep > 0, hint_ep, np.where(spills, _pow2_at_most(np.minimum(experts, dp)), local_ep))
    live &= ~((hint_ep > 0) & ((ep > dp) | (ep > experts)))
    ep = np.where(live, np.maximum(ep, 1.0), 1.0)
    params_per_chip = (dense + expert / ep) / (tp * pp)
    static = STATE_BYTES * params_per_chip + OPTIMIZER_BYTES * params / used
    span = act_full - act_min
    if recompute:
        share = np.minimum(1.0, np.maximum(0.0, (static + act_full - usable) / span))
        fits = static + act_min <= usable
    else:
        share = np.zeros(size)
        fits = static + act_full <= usable
    mem = static + act_full - share * span
    _take(out, live, pp=pp, dp=dp, ep=ep, mem_per_chip=mem, recompute=share)
    fail_mem = live & ~fits
    _take(out, fail_mem, reason=MEMORY)
    live &= ~fail_mem
    micro_batches = j[:, J_BATCH_SEQS] / dp
    fail_batch = live & (micro_batches < 1.0)
    _take(out, fail_batch, reason=BATCH)
    live &= ~fail_batch
    micro_batches = np.where(live, micro_batches, 1.0)

    fp8 = j[:, J_FP8] > 0.0
    peak = np.where(fp8, c[:, C_PEAK_FP8], c[:, C_PEAK_BF16])
    width = hidden / tp
    eff = np.where(fp8, c[:, C_EFF_FP8], c[:, C_EFF_BF16]) * width / (width + c[:, C_GEMM_W0])
    seq = j[:, J_SEQ_LEN]
    tokens_step = j[:, J_BATCH_SEQS] * seq
    model_flops = tokens_step * (6.0 * j[:, J_ACTIVE] + 12.0 * layers * seq * j[:, J_ATTN_DIM])
    t_compute = model_flops / (peak * eff) * (1.0 + share * (RECOMPUTE_FLOPS - 1.0)) / used
    su_bw, so_bw = c[:, C_SU_BW] * c[:, C_EFF_NET], c[:, C_SO_BW] * c[:, C_EFF_NET]
    su_lat, so_lat = c[:, C_SU_LAT], c[:, C_SO_LAT]
    layer_passes = micro_batches * layers / pp
    collectives = 4.0 + 2.0 * share
    tp_arr = np.full(size, float(tp))
    t_tp = layer_passes * collectives * _allreduce(tp_arr, seq * hidden * 2.0, su_bw, su_lat)
    crosses = tp * pp > per_domain
    bw, lat = np.where(crosses, so_bw, su_bw), np.where(crosses, so_lat, su_lat)
    virtual = np.where(pp > 1.0, np.maximum(1.0, np.minimum(VIRTUAL_MAX, np.floor(layers / pp / CHUNK_LAYERS_MIN))), 1.0)
    t_pp = np.where(pp > 1.0, 2.0 * micro_batches * virtual * (seq * hidden * 2.0 / tp / bw + lat), 0.0)
    bubble = (pp - 1.0) / (virtual * micro_batches)
    grad_bytes = 2.0 * params_per_chip
    dp_out = np.ceil(dp / dp_in)
    t_dp = _allreduce(dp_in, grad_bytes, su_bw, su_lat) + _allreduce(dp_out, grad_bytes / dp_in, so_bw, so_lat)
    t_dp_exposed = np.maximum(0.0, t_dp - DP_OVERLAP * t_compute)
    ep_in = np.maximum(1.0, np.minimum(ep, dp_in))
    a2a_bytes = seq / tp * j[:, J_TOP_K] * hidden * 2.0
    t_ep = np.where(ep > 1.0, layer_passes * collectives
                    * _alltoall(ep, ep_in, a2a_bytes, su_bw, su_lat, so_bw, so_lat), 0.0)
    step = (t_compute + t_tp + t_ep) * (1.0 + bubble) + t_pp + t_dp_exposed
    tokens_per_s = tokens_step / step
    duration = step * (j[:, J_TOKENS] / (j[:, J_BATCH_SEQS] * seq) / 3600.0)
    power = n * (c[:, C_IDLE_KW] + c[:, C_BUSY_KW] * (t_compute / step))
    late = j[:, J_ARRIVAL_H] + duration > j[:, J_DEADLINE_H]
    _take(out, live, step_time_s=step, tokens_per_s=tokens_per_s, mfu=model_flops / (step * n * peak),
          duration_h=duration, score=-step, power_kw=power, energy_kwh=power * duration,
          cost_usd=n * c[:, C_PRICE_HR] * duration, reason=np.where(late, DEADLINE, OK))
    return out


class _Infer:
    def __init__(self, j, c, tp, pp, per_domain):
        self.j, self.c, self.tp, self.pp = j, c, tp, pp
        fp8 = j[:, J_FP8] > 0.0
        self.wbytes = np.where(fp8, 1.0, 2.0)
        self.peak = np.where(fp8, c[:, C_PEAK_FP8], c[:, C_PEAK_BF16])
        width = j[:, J_HIDDEN] / tp
        self.eff = np.where(fp8, c[:, C_EFF_FP8], c[:, C_EFF_BF16]) * width / (width + c[:, C_GEMM_W0])
        self.su_bw = c[:, C_SU_BW] * c[:, C_EFF_NET]
        self.hbm_bw = c[:, C_HBM_BW] * c[:, C_EFF_HBM]
        crosses = tp * pp > per_domain
        self.pp_bw = np.where(crosses, c[:, C_SO_BW], c[:, C_SU_BW]) * c[:, C_EFF_NET]
        self.pp_lat = np.where(crosses, c[:, C_SO_LAT], c[:, C_SU_LAT])
        self.kv_split = np.minimum(tp, j[:, J_KV_HEADS])
        self.tp_arr = np.full(len(pp), float(tp))

    def weights_read(self, tokens):
        j = self.j
        expert = j[:, J_PARAMS] - j[:, J_DENSE]
        return (j[:, J_DENSE] + expert * _touched(j[:, J_EXPERTS], j[:, J_TOP_K], tokens)) * self.wbytes

    def collectives(self, tokens):
        j, tp = self.j, self.tp_arr
        nbytes = tokens * j[:, J_HIDDEN] * 2.0
        lat = self.c[:, C_SU_LAT]
        moe = (_allreduce(tp, nbytes, self.su_bw, lat)
               + 2.0 * _alltoall(tp, tp, nbytes * j[:, J_TOP_K], self.su_bw, lat, self.su_bw, lat))
        per_layer = np.where(j[:, J_EXPERTS] > 1.0, moe, 2.0 * _allreduce(tp, nbytes, self.su_bw, lat))
        hops = (self.pp - 1.0) * (nbytes / self.pp_bw + self.pp_lat)
        return j[:, J_LAYERS] * per_layer + hops

    def tpot(self, batch):
        j = self.j
        ctx = j[:, J_PROMPT] + 0.5 * j[:, J_OUTPUT]
        flops = batch * (2.0 * j[:, J_ACTIVE] + 4.0 * j[:, J_LAYERS] * ctx * j[:, J_ATTN_DIM])
        t_compute = flops / (self.tp * self.peak * self.eff)
        kv = batch * ctx * j[:, J_LAYERS] * j[:, J_KV_DIM] * self.wbytes / self.kv_split
        t_memory = (self.weights_read(batch) / self.tp + kv) / self.hbm_bw
        busy = np.maximum(t_compute, t_memory)
        step = busy + self.collectives(batch) + j[:, J_LAYERS] * self.c[:, C_LAYER_OVERHEAD]
        return step, busy / step

    def prefill_flops(self):
        j = self.j
        p = j[:, J_PROMPT]
        return 2.0 * j[:, J_ACTIVE] * p + 2.0 * j[:, J_LAYERS] * p * p * j[:, J_ATTN_DIM]

    def ttft(self):
        j, c = self.j, self.c
        p = j[:, J_PROMPT]
        t_compute = self.prefill_flops() / (self.tp * self.peak * self.eff * c[:, C_EFF_PREFILL])
        t_memory = self.weights_read(p) / self.tp / self.hbm_bw
        return (np.maximum(t_compute, t_memory) + self.collectives(p)
                + j[:, J_LAYERS] * c[:, C_LAYER_OVERHEAD] + c[:, C_REQUEST_OVERHEAD])

    def throughput(self, batch, step):
        t_prefill = self.prefill_flops() / (self.tp * self.pp * self.peak * self.eff * self.c[:, C_EFF_PREFILL])
        return 1.0 / (step / (self.pp * batch) + t_prefill / self.j[:, J_OUTPUT])


def _infer(j, c, n, per_domain, tp):
    out = _empty(len(n))
    out["tp"][:] = tp
    layers = j[:, J_LAYERS]
    usable = c[:, C_HBM] * (1.0 - c[:, C_MEM_RESERVE])
    wbytes = np.where(j[:, J_FP8] > 0.0, 1.0, 2.0)
    weights = j[:, J_PARAMS] * wbytes
    kv_seq = (j[:, J_PROMPT] + j[:, J_OUTPUT]) * layers * j[:, J_KV_DIM] * wbytes
    kv_split = np.minimum(tp, j[:, J_KV_HEADS])
    room = usable - kv_seq / kv_split
    pp_need = np.where(room > 0.0, weights / tp / room, INF)
    pp = np.where(pp_need <= layers, _pow2_at_least(pp_need), INF)
    pp = np.where(j[:, J_HINT_PP] > 0, j[:, J_HINT_PP], pp)
    fail_pp = (pp > layers) | (tp * pp > n)
    pp_shown = np.minimum(pp, layers)
    _take(out, fail_pp, reason=MEMORY, pp=pp_shown, mem_per_chip=weights / (tp * pp_shown) + kv_seq / kv_split)
    live = ~fail_pp
    pp = np.where(live, pp, 1.0)
    replicas = np.floor(n / (tp * pp))
    hint_dp = j[:, J_HINT_DP]
    live &= ~((hint_dp > 0) & (hint_dp > replicas))
    replicas = np.where(hint_dp > 0, hint_dp, replicas)
    free = usable - weights / (tp * pp)
    max_batch = np.where(free > 0.0, np.minimum(float(MAX_BATCH), np.floor(free * kv_split / kv_seq)), 0.0)
    auto = j[:, J_BATCH] <= 0
    wanted = np.where(auto, np.maximum(max_batch, 1.0), j[:, J_BATCH])
    _take(out, live, pp=pp, dp=replicas, replicas=replicas, max_batch=max_batch, batch=wanted,
          mem_per_chip=weights / (tp * pp) + wanted * kv_seq / kv_split)
    fail_mem = live & (wanted > max_batch)
    _take(out, fail_mem, reason=MEMORY)
    live &= ~fail_mem

    model = _Infer(j, c, tp, pp, per_domain)
    ttft = model.ttft()
    step, busy = model.tpot(wanted)
    slo_tpot = j[:, J_SLO_TPOT]
    shrink = np.flatnonzero(live & auto & (step > slo_tpot))
    if len(shrink):
        # Bisection on the rows whose TPOT SLO binds, and only those.
        sub = _Infer(j[shrink], c[shrink], tp, pp[shrink], per_domain[shrink])
        slo = slo_tpot[shrink]
        lo = np.ones(len(shrink))
        hi = wanted[shrink].copy()
        search = sub.tpot(lo)[0] <= slo
        while True:
            going = search & (hi - lo > 1.0)
            if not going.any():
                break
            mid = np.floor(0.5 * (lo + hi))
            fits = sub.tpot(mid)[0] <= slo
            lo = np.where(going & fits, mid, lo)
            hi = np.where(going & ~fits, mid, hi)
        wanted[shrink] = np.where(search, lo, 1.0)
        step[shrink], busy[shrink] = sub.tpot(wanted[shrink])
    per_replica = model.throughput(wanted, step)
    total = replicas * per_replica
    need = j[:, J_RATE] * j[:, J_OUTPUT] / per_replica
    load = np.where(need > 0.0, np.minimum(1.0, need / replicas), 1.0)
    duration = j[:, J_DURATION_H]
    power = n * (c[:, C_IDLE_KW] + c[:, C_BUSY_KW] * (load * busy))
    excess = np.maximum(ttft / j[:, J_SLO_TTFT], step / slo_tpot)
    slow_first = ttft > j[:, J_SLO_TTFT]
    slow_next = step > slo_tpot
    reason = np.select([slow_first, slow_next, need > replicas], [SLO_TTFT, SLO_TPOT, RATE], OK)
    score = np.where(slow_first | slow_next, -excess, total)
    _take(out, live, batch=wanted, ttft_s=ttft, tpot_s=step, tokens_per_s=total,
          replicas_needed=np.ceil(need), duration_h=duration, power_kw=power,
          energy_kwh=power * duration, cost_usd=n * c[:, C_PRICE_HR] * duration, reason=reason, score=score)
    return out


def _subset(d: dict, idx) -> dict:
    return {k: v[idx] for k, v in d.items()}


def score(job_table, chip_table, job_index, chip_index, chips, domains) -> dict[str, np.ndarray]:
    size = len(job_index)
    j, c = job_table[job_index], chip_table[chip_index]
    n, dom = chips.astype(np.float64), domains.astype(np.float64)
    best = _empty(size)
    with np.errstate(all="ignore"):
        per_domain = np.minimum(c[:, C_DOMAIN], np.ceil(n / np.maximum(dom, 1.0)))
        searching = (n >= 1.0) & (dom >= 1.0)
        floor_total = np.where(j[:, J_KIND] == 0, (STATE_BYTES + OPTIMIZER_BYTES) * j[:, J_PARAMS],
                               j[:, J_PARAMS] * np.where(j[:, J_FP8] > 0.0, 1.0, 2.0))
        hopeless = searching & (floor_total / n > c[:, C_HBM] * (1.0 - c[:, C_MEM_RESERVE]))
        best["reason"][hopeless] = MEMORY
        best["mem_per_chip"][hopeless] = (floor_total / n)[hopeless]
        searching &= ~hopeless
        train = j[:, J_KIND] == 0
        hint_tp = j[:, J_HINT_TP]
        tp = 1.0
        for _ in TP_OPTIONS:
            searching &= ~((tp > per_domain) | (tp > n) | (tp > j[:, J_HEADS]))
            if not searching.any():
                break
            for is_train in (True, False):
                idx = np.flatnonzero(searching & (train == is_train) & ((hint_tp <= 0) | (hint_tp == tp)))
                if not len(idx):
                    continue
                args = (j[idx], c[idx], n[idx], per_domain[idx], tp)
                if is_train:
                    cand = _train(*args, 0)
                    retry = np.flatnonzero(cand["reason"] == MEMORY)
                    if len(retry):
                        again = _train(*(a[retry] for a in args[:4]), tp, 1)
                        take = _beats(again, _subset(cand, retry))
                        for k in FIELDS:
                            cand[k][retry[take]] = again[k][take]
                else:
                    cand = _infer(*args)
                prev = _subset(best, idx)
                better = _beats(cand, prev)
                stop = ~better & (prev["reason"] == OK) & (cand["reason"] == OK) & (cand["recompute"] == 0.0)
                for k in FIELDS:
                    best[k][idx[better]] = cand[k][better]
                searching[idx[stop]] = False
            tp *= 2.0
    out = {k: best[k] for k in OUTPUTS}
    out["reason"] = best["reason"].astype(np.int32)
    out["feasible"] = (out["reason"] == OK).astype(np.uint8)
    return out
