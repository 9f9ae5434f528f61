"""Disaggregated serving: one job's prefill pool and decode pool, possibly of two
chip types, joined by a link that carries each request's KV cache (_pools.pxi).

Given the job, the two chip types and the link (FUSED: the scale-up fabric of
one rack or one hybrid rack; SCALE_OUT: the data-centre network), the model
sizes both pools for the job's request rate and returns them with the job's
combined metrics:

- decode pool: replicas of tp x pp chips (pp from memory for the weights and
  one sequence's KV cache, the whole replica inside one scale-up domain), each
  holding the most sequences whose T(b) stays within the TPOT cap; no prefill
  ever interrupts them, so TPOT is T(b) at the sequences in flight (Little's
  law at the replica's share of the rate), and a replica finishes
  n / (output x T(n)) requests/s, of which the rate may use DECODE_UTIL.
- KV transfer: prompt x layers x kv_dim x kv_bytes per request, sent over
  min(prefill replica chips, decode replica chips) parallel links at the
  slower side's sustained bandwidth, plus one message latency; a decode
  replica's links take in at most LINK_UTIL of their time (more replicas
  where the rate needs them), and a prefill replica sends while it prefills
  the next prompt, so it serves a prompt every max(t_pf, t_link).
- prefill pool: replicas whose prompts queue as in an M/D/1 queue (service
  time t_pf, pipelined); TTFT = idle TTFT + queueing + transfer, so the
  utilisation each replica may run at is the smaller of PREFILL_UTIL and what
  keeps the wait within the TTFT SLO: rho <= 2W / (t_pf + 2W), with W the SLO
  less the idle TTFT and the transfer.
- Each pool takes the tensor-parallel degree that serves the rate for the
  least chip-hour price (then the least power); decode is chosen first, since
  its replica shape sets the transfer's parallel links.
- Power: every chip its idle and host share; prefill chips busy power while
  prefilling (a share rho of the time), decode chips the busy share of T(b).
"""
from __future__ import annotations

import math

from trnsched.perf.columns import (
    C_BUSY_KW, C_DOMAIN, C_EFF_NET, C_HBM, C_HOST_KW, C_IDLE_KW, C_MEM_RESERVE, C_PRICE_HR, C_SO_BW,
    C_SO_LAT, C_SU_BW, C_SU_LAT, J_DURATION_H, J_HEADS, J_KV_BYTES, J_KV_DIM, J_KV_HEADS, J_LAYERS,
    J_OUTPUT, J_PARAMS, J_PROMPT, J_RATE, J_SLO_TPOT, J_SLO_TTFT, J_WBYTES, MAX_BATCH, MEMORY, NO_LAYOUT,
    OK, POOL_FIELDS, RATE, SLO_TPOT, SLO_TTFT, TP_OPTIONS,
)
from trnsched.perf.constants import DECODE_UTIL, LINK_UTIL, POOL_FIXED_POINT, PREFILL_UTIL, SERVICE_TPOT_S
from trnsched.perf.reference.common import INF, pow2_at_least
from trnsched.perf.reference.serving import Infer

FUSED, SCALE_OUT = 0, 1


class Pools:
    """The output record (the pxd's Pools struct, field for field)."""

    def __init__(self) -> None:
        for name in POOL_FIELDS:
            setattr(self, name, 0.0)
        self.reason = NO_LAYOUT


def link_speed(chip_p, chip_d, link: int) -> tuple[float, float]:
    """Sustained bytes/s per chip and seconds per message of the link between the
    pools: the slower side's bandwidth, the longer latency."""
    if link == FUSED:
        return (min(chip_p[C_SU_BW] * chip_p[C_EFF_NET], chip_d[C_SU_BW] * chip_d[C_EFF_NET]),
                max(chip_p[C_SU_LAT], chip_d[C_SU_LAT]))
    return (min(chip_p[C_SO_BW] * chip_p[C_EFF_NET], chip_d[C_SO_BW] * chip_d[C_EFF_NET]),
            max(chip_p[C_SO_LAT], chip_d[C_SO_LAT]))


def pool_depth(job, chip, tp: float, kv_seq: float) -> float:
    """Pipeline depth for the weights plus one sequence's KV cache per chip; INF
    when none fits, or the replica would leave its scale-up domain."""
    usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    room = usable - kv_seq / min(tp, job[J_KV_HEADS])
    need = job[J_PARAMS] * job[J_WBYTES] / tp / room if room > 0.0 else INF
    pp = pow2_at_least(need) if need <= job[J_LAYERS] else INF
    return pp if tp * pp <= chip[C_DOMAIN] else INF


def cheaper(cost: float, power: float, best_cost: float, best_power: float) -> bool:
    return cost < best_cost or (cost == best_cost and power < best_power)


def decode_pool(job, chip, bw: float, out: Pools) -> int:
    """The decode pool's cheapest layout into `out`; returns OK or why none.
    Its replicas also take in the KV caches: at most LINK_UTIL of their links'
    time (a replica's tp x pp chips receive at `bw` each)."""
    rate, output = job[J_RATE], job[J_OUTPUT]
    kv_prompt = job[J_PROMPT] * job[J_LAYERS] * job[J_KV_DIM] * job[J_KV_BYTES]
    kv_seq = (job[J_PROMPT] + output) * job[J_LAYERS] * job[J_KV_DIM] * job[J_KV_BYTES]
    usable = chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE])
    cap = job[J_SLO_TPOT] if job[J_SLO_TPOT] < INF else SERVICE_TPOT_S
    reason, best_cost, best_power = MEMORY, INF, INF
    tp = 1.0
    for _ in TP_OPTIONS:
        if tp > chip[C_DOMAIN] or tp > job[J_HEADS]:
            break
        pp = pool_depth(job, chip, tp, kv_seq)
        if pp < INF:
            weights_chip = job[J_PARAMS] * job[J_WBYTES] / (tp * pp)
            kv_chip = kv_seq / (min(tp, job[J_KV_HEADS]) * pp)
            most = min(float(MAX_BATCH), math.floor((usable - weights_chip) / kv_chip))
            model = Infer(job, chip, tp, pp, chip[C_DOMAIN])
            if most >= 1.0 and model.decode(1.0)[0] > cap:
                if reason != OK:
                    reason = SLO_TPOT
            elif most >= 1.0:
                lo, hi = 1.0, most
                if model.decode(hi)[0] <= cap:
                    lo = hi
                while hi - lo > 1.0:
                    mid = math.floor(0.5 * (lo + hi))
                    if model.decode(mid)[0] <= cap:
                        lo = mid
                    else:
                        hi = mid
                n = lo
                capacity = n / (output * model.decode(n)[0])     # requests/s at the TPOT cap
                ingress = kv_prompt / (tp * pp * bw)              # link-seconds per request
                replicas = max(math.ceil(rate / (DECODE_UTIL * capacity)), math.ceil(rate * ingress / LINK_UTIL))
                lam = rate / replicas
                inflight = n
                for _ in range(POOL_FIXED_POINT):
                    inflight = min(n, max(1.0, lam * output * model.decode(inflight)[0]))
                tpot, busy = model.decode(inflight)
                chips = replicas * tp * pp
                power = chips * (chip[C_IDLE_KW] + chip[C_HOST_KW] + chip[C_BUSY_KW] * busy)
                cost = chips * chip[C_PRICE_HR]
                if cheaper(cost, power, best_cost, best_power):
                    reason, best_cost, best_power = OK, cost, power
                    out.decode_tp, out.decode_pp, out.decode_replicas, out.decode_chips = tp, pp, replicas, chips
                    out.decode_batch, out.decode_util = n, lam / capacity
                    out.decode_power_kw, out.decode_mem_per_chip = power, weights_chip + n * kv_chip
                    out.tpot_s = tpot
                    out.kv_link_share = lam * ingress
        tp *= 2.0
    return reason


def prefill_pool(job, chip, bw: float, lat: float, out: Pools) -> int:
    """The prefill pool's cheapest layout into `out`, given the decode pool's
    replica shape (the transfer's parallel links); returns OK or why none.  A
    replica prefills one prompt while it sends the last one's KV cache, so it
    serves a prompt every max(t_pf, t_link): that is the queue's service time."""
    rate = job[J_RATE]
    kv_prompt = job[J_PROMPT] * job[J_LAYERS] * job[J_KV_DIM] * job[J_KV_BYTES]
    decode_share = out.kv_link_share
    reason, best_cost, best_power = MEMORY, INF, INF
    tp = 1.0
    for _ in TP_OPTIONS:
        if tp > chip[C_DOMAIN] or tp > job[J_HEADS]:
            break
        pp = pool_depth(job, chip, tp, kv_prompt)
        if pp < INF:
            model = Infer(job, chip, tp, pp, chip[C_DOMAIN])
            ttft0, t_pf = model.ttft(), model.prefill_time()
            links = min(tp * pp, out.decode_tp * out.decode_pp)
            t_link = kv_prompt / (links * bw)
            transfer = t_link + lat
            service = max(t_pf, t_link)
            wait = job[J_SLO_TTFT] - ttft0 - transfer       # the queueing the SLO leaves
            if wait <= 0.0:
                if reason == MEMORY:
                    reason = SLO_TTFT
            else:
                rho_max = PREFILL_UTIL if wait == INF else min(PREFILL_UTIL, 2.0 * wait / (service + 2.0 * wait))
                replicas = math.ceil(rate * service / rho_max)
                busy = rate * service / replicas
                rho = rate * t_pf / replicas
                chips = replicas * tp * pp
                power = chips * (chip[C_IDLE_KW] + chip[C_HOST_KW] + chip[C_BUSY_KW] * rho)
                cost = chips * chip[C_PRICE_HR]
                if cheaper(cost, power, best_cost, best_power):
                    reason, best_cost, best_power = OK, cost, power
                    out.prefill_tp, out.prefill_pp, out.prefill_replicas, out.prefill_chips = tp, pp, replicas, chips
                    out.prefill_util, out.prefill_power_kw = rho, power
                    out.prefill_mem_per_chip = (job[J_PARAMS] * job[J_WBYTES] / (tp * pp)
                                                + kv_prompt / (min(tp, job[J_KV_HEADS]) * pp))
                    out.kv_transfer_s = transfer
                    out.kv_link_share = max(decode_share, rate * t_link / replicas)
                    out.ttft_s = ttft0 + busy * service / (2.0 * (1.0 - busy)) + transfer
        tp *= 2.0
    return reason


def pools(job, chip_p, chip_d, link: int) -> Pools:
    """Both pools for the job's rate, and the job's combined metrics."""
    out = Pools()
    if job[J_RATE] <= 0.0:
        out.reason = RATE           # nothing to size the pools for
        return out
    bw, lat = link_speed(chip_p, chip_d, link)
    out.reason = decode_pool(job, chip_d, bw, out)
    if out.reason != OK:
        return out
    out.kv_bytes = job[J_PROMPT] * job[J_LAYERS] * job[J_KV_DIM] * job[J_KV_BYTES]
    out.reason = prefill_pool(job, chip_p, bw, lat, out)
    if out.reason != OK:
        return out
    out.duration_h = job[J_DURATION_H]
    out.tokens_per_s = job[J_RATE] * job[J_OUTPUT]
    out.latency_s = out.ttft_s + job[J_OUTPUT] * out.tpot_s
    out.power_kw = out.prefill_power_kw + out.decode_power_kw
    out.energy_kwh = out.power_kw * out.duration_h
    out.cost_usd = (out.prefill_chips * chip_p[C_PRICE_HR] + out.decode_chips * chip_d[C_PRICE_HR]) * out.duration_h
    return out


def score_pools(job_table, chip_table, job_index, prefill_index, decode_index, link) -> dict:
    """Every (job, prefill type, decode type, link); returns {field: list}."""
    results = {name: [] for name in POOL_FIELDS + ("reason",)}
    for i in range(len(job_index)):
        out = pools(job_table[job_index[i]], chip_table[prefill_index[i]], chip_table[decode_index[i]],
                    int(link[i]))
        for name in results:
            results[name].append(getattr(out, name))
    return results
