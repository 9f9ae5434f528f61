"""Inference layouts: replicas of tp x pp chips, the batch they hold, TTFT, TPOT
and throughput (_serving.pxi)."""
from __future__ import annotations

import math

from trnsched.perf.columns import (
    C_BUSY_KW, C_EFF_BF16, C_EFF_FP8, C_EFF_HBM, C_EFF_NET, C_EFF_PREFILL, C_GEMM_W0, C_HBM, C_HBM_BW,
    C_IDLE_KW, C_LAYER_OVERHEAD, C_MEM_RESERVE, C_PEAK_BF16, C_PEAK_FP8, C_PRICE_HR, C_REQUEST_OVERHEAD,
    C_SO_BW, C_SO_LAT, C_SU_BW, C_SU_LAT, J_ACTIVE, J_ATTN_DIM, J_BATCH, J_DENSE, J_DURATION_H, J_EXPERTS,
    J_FP8, J_HIDDEN, J_HINT_DP, J_HINT_PP, J_KV_DIM, J_KV_HEADS, J_LAYERS, J_OUTPUT, J_PARAMS, J_PROMPT, J_RATE,
    J_SLO_TPOT, J_SLO_TTFT, J_TOP_K, MAX_BATCH, MEMORY, OK, RATE, SLO_TPOT, SLO_TTFT,
)
from trnsched.perf.reference.common import INF, Layout, allreduce_time, alltoall_time, experts_touched, pow2_at_least


class Infer:
    """Per-replica inference timings for one (tp, pp); batch is the only free variable."""

    def __init__(self, job, chip, tp: int, pp: int, per_domain: int) -> None:
        self.job, self.chip, self.tp, self.pp = job, chip, tp, pp
        fp8 = job[J_FP8] > 0.0
        self.wbytes = 1.0 if fp8 else 2.0
        self.peak = chip[C_PEAK_FP8] if fp8 else chip[C_PEAK_BF16]
        width = job[J_HIDDEN] / tp
        self.eff = (chip[C_EFF_FP8] if fp8 else chip[C_EFF_BF16]) * width / (width + chip[C_GEMM_W0])
        self.su_bw = chip[C_SU_BW] * chip[C_EFF_NET]
        self.hbm_bw = chip[C_HBM_BW] * chip[C_EFF_HBM]
        crosses = tp * pp > per_domain
        self.pp_bw = (chip[C_SO_BW] if crosses else chip[C_SU_BW]) * chip[C_EFF_NET]
        self.pp_lat = chip[C_SO_LAT] if crosses else chip[C_SU_LAT]
        self.kv_split = min(tp, job[J_KV_HEADS])

    def _weights_read(self, tokens: float) -> float:
        j = self.job
        expert = j[J_PARAMS] - j[J_DENSE]
        return (j[J_DENSE] + expert * experts_touched(j[J_EXPERTS], j[J_TOP_K], tokens)) * self.wbytes

    def _collectives(self, tokens: float) -> float:
        """Per forward pass: TP all-reduces (or MoE all-to-alls) per layer, pipeline hops."""
        j, tp = self.job, self.tp
        nbytes = tokens * j[J_HIDDEN] * 2.0
        lat = self.chip[C_SU_LAT]
        if j[J_EXPERTS] > 1.0:
            per_layer = (allreduce_time(tp, nbytes, self.su_bw, lat)
                         + 2.0 * alltoall_time(tp, tp, nbytes * j[J_TOP_K], self.su_bw, lat,
                                               self.su_bw, lat))
        else:
            per_layer = 2.0 * allreduce_time(tp, nbytes, self.su_bw, lat)
        hops = (self.pp - 1.0) * (nbytes / self.pp_bw + self.pp_lat)
        return j[J_LAYERS] * per_layer + hops

    def tpot(self, batch: float) -> tuple[float, float]:
        """Seconds per decode step for `batch` sequences, and the busy share of it."""
        j = self.job
        ctx = j[J_PROMPT] + 0.5 * j[J_OUTPUT]
        flops = batch * (2.0 * j[J_ACTIVE] + 4.0 * j[J_LAYERS] * ctx * j[J_ATTN_DIM])
        t_compute = flops / (self.tp * self.peak * self.eff)
        kv = batch * ctx * j[J_LAYERS] * j[J_KV_DIM] * self.wbytes / self.kv_split
        t_memory = (self._weights_read(batch) / self.tp + kv) / self.hbm_bw
        busy = max(t_compute, t_memory)
        step = busy + self._collectives(batch) + j[J_LAYERS] * self.chip[C_LAYER_OVERHEAD]
        return step, busy / step

    def prefill_flops(self) -> float:
        j = self.job
        p = j[J_PROMPT]
        return 2.0 * j[J_ACTIVE] * p + 2.0 * j[J_LAYERS] * p * p * j[J_ATTN_DIM]

    def ttft(self) -> float:
        j = self.job
        p = j[J_PROMPT]
        t_compute = self.prefill_flops() / (self.tp * self.peak * self.eff * self.chip[C_EFF_PREFILL])
        t_memory = self._weights_read(p) / self.tp / self.hbm_bw
        return (max(t_compute, t_memory) + self._collectives(p)
                + j[J_LAYERS] * self.chip[C_LAYER_OVERHEAD] + self.chip[C_REQUEST_OVERHEAD])

    def throughput(self, batch: float, step: float) -> float:
        """Output tokens/s of one replica: pp micro-batches of `batch` decode while
        prompts are prefilled in between (prefill batched, so no fixed costs)."""
        j = self.job
        t_prefill = self.prefill_flops() / (self.tp * self.pp * self.peak * self.eff
                                            * self.chip[C_EFF_PREFILL])
        return 1.0 / (step / (self.pp * batch) + t_prefill / j[J_OUTPUT])


class Replica:
    """What one inference replica of tensor-parallel degree tp achieves.  None of it
    depends on the candidate's chip count, so the core computes it once per job,
    chip type and domain size and reuses it across counts."""

    __slots__ = ("tp", "pp", "weights_chip", "kv_seq", "kv_split", "max_batch", "batch", "mem_per_chip",
                 "fits", "ttft", "tpot", "busy", "per_replica", "need", "excess")


def replica(job, chip, per_domain: float, tp: float) -> Replica:
    r = Replica()
    r.tp = tp
    usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    wbytes = 1.0 if job[J_FP8] > 0.0 else 2.0
    weights = job[J_PARAMS] * wbytes
    r.kv_seq = (job[J_PROMPT] + job[J_OUTPUT]) * job[J_LAYERS] * job[J_KV_DIM] * wbytes
    r.kv_split = min(tp, job[J_KV_HEADS])
    if job[J_HINT_PP] > 0:
        pp = job[J_HINT_PP]
    else:
        # Per chip: weights/(tp pp) plus the KV cache of at least one sequence.
        room = usable - r.kv_seq / r.kv_split
        pp_need = weights / tp / room if room > 0.0 else INF
        pp = pow2_at_least(pp_need) if pp_need <= job[J_LAYERS] else INF
    r.pp = pp
    r.weights_chip = weights / (tp * min(pp, job[J_LAYERS]))
    r.max_batch = r.batch = r.ttft = r.tpot = r.busy = r.per_replica = r.need = r.excess = 0.0
    r.fits = False
    r.mem_per_chip = r.weights_chip + r.kv_seq / r.kv_split
    if pp > job[J_LAYERS]:
        return r

    free = usable - r.weights_chip
    r.max_batch = min(float(MAX_BATCH), math.floor(free * r.kv_split / r.kv_seq)) if free > 0.0 else 0.0
    wanted = job[J_BATCH] if job[J_BATCH] > 0 else max(r.max_batch, 1.0)
    r.batch = wanted
    r.mem_per_chip = r.weights_chip + wanted * r.kv_seq / r.kv_split
    r.fits = wanted <= r.max_batch
    if not r.fits:
        return r

    model = Infer(job, chip, tp, pp, per_domain)
    r.ttft = model.ttft()
    step, busy = model.tpot(wanted)
    slo_tpot = job[J_SLO_TPOT]
    if job[J_BATCH] <= 0 and step > slo_tpot:
        # Largest batch that still meets the TPOT SLO (TPOT grows with batch).
        lo, hi = 1.0, wanted
        if model.tpot(lo)[0] <= slo_tpot:
            while hi - lo > 1.0:
                mid = math.floor(0.5 * (lo + hi))
                if model.tpot(mid)[0] <= slo_tpot:
                    lo = mid
                else:
                    hi = mid
            wanted = lo
        else:
            wanted = 1.0
        step, busy = model.tpot(wanted)
    r.batch, r.tpot, r.busy = wanted, step, busy
    r.per_replica = model.throughput(wanted, step)
    r.need = job[J_RATE] * job[J_OUTPUT] / r.per_replica   # replicas the request rate needs
    r.excess = max(r.ttft / job[J_SLO_TTFT], r.tpot / job[J_SLO_TPOT])
    return r


def infer_layout(job, chip, n: float, rep: Replica) -> Layout:
    """An inference layout: as many replicas as fit in n chips."""
    out = Layout()
    tp, pp = rep.tp, rep.pp
    out.tp = tp
    if pp > job[J_LAYERS] or tp * pp > n:
        out.reason = MEMORY
        out.pp = min(pp, job[J_LAYERS])
        out.mem_per_chip = rep.weights_chip + rep.kv_seq / rep.kv_split
        return out
    replicas = n // (tp * pp)
    if job[J_HINT_DP] > 0:
        if job[J_HINT_DP] > replicas:
            return out
        replicas = job[J_HINT_DP]
    out.pp, out.dp, out.replicas = pp, replicas, replicas
    out.max_batch, out.batch, out.mem_per_chip = rep.max_batch, rep.batch, rep.mem_per_chip
    if not rep.fits:
        out.reason = MEMORY
        return out

    out.ttft_s, out.tpot_s = rep.ttft, rep.tpot
    total = replicas * rep.per_replica
    out.tokens_per_s = total
    out.replicas_needed = math.ceil(rep.need)
    load = min(1.0, rep.need / replicas) if rep.need > 0.0 else 1.0
    out.duration_h = job[J_DURATION_H]
    activity = load * rep.busy
    out.power_kw = n * (chip[C_IDLE_KW] + chip[C_BUSY_KW] * activity)
    out.energy_kwh = out.power_kw * out.duration_h
    out.cost_usd = n * chip[C_PRICE_HR] * out.duration_h
    if rep.ttft > job[J_SLO_TTFT]:
        out.reason, out.score = SLO_TTFT, -rep.excess
    elif rep.tpot > job[J_SLO_TPOT]:
        out.reason, out.score = SLO_TPOT, -rep.excess
    elif rep.need > replicas:
        out.reason, out.score = RATE, total
    else:
        out.reason, out.score = OK, total
    return out
