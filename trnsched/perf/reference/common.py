"""The reference model's shared pieces: the layout record, collectives and the
small integer helpers (_common.pxi in the compiled core)."""
from __future__ import annotations

import math

from trnsched.perf.columns import (
    BF16, C_EFF_BF16, C_EFF_FP4, C_EFF_FP8, C_EXPERT_W0, C_PEAK_BF16, C_PEAK_FP4, C_PEAK_FP8, FP4, J_ACTIVE, J_DENSE,
    J_EXPERT_WIDTH, J_KIND, J_PARAMS, J_PRECISION,
    J_WBYTES, NO_LAYOUT, OUTPUTS, progress,
)
from trnsched.perf.constants import OPTIMIZER_BYTES, STATE_BYTES

INF = math.inf


def rounds(chips: float) -> float:
    """Doubling rounds to reach `chips` peers: ceil(log2(chips))."""
    k, p = 0.0, 1.0
    while p < chips:
        p *= 2.0
        k += 1.0
    return k


def pow2_at_least(x: float) -> float:
    """Smallest power of two >= x (callers keep x small and finite)."""
    p = 1.0
    while p < x:
        p *= 2.0
    return p


def allreduce_time(chips: float, nbytes: float, bw: float, lat: float) -> float:
    """Ring all-reduce (reduce-scatter + all-gather) bandwidth term; latency of a
    tree or switch reduction: one message per doubling round, both phases."""
    if chips <= 1:
        return 0.0
    return 2.0 * (chips - 1.0) / chips * nbytes / bw + 2.0 * rounds(chips) * lat


def hierarchical_allreduce(group: float, in_domain: float, nbytes: float, su_bw: float, su_lat: float,
                           so_bw: float, so_lat: float) -> float:
    """All-reduce over `group` peers, `in_domain` of them per scale-up domain:
    inside each domain first, then across domains on the 1/in_domain shard each
    chip owns."""
    return (allreduce_time(in_domain, nbytes, su_bw, su_lat)
            + allreduce_time(math.ceil(group / in_domain), nbytes / in_domain, so_bw, so_lat))


def alltoall_time(group: float, in_domain: float, token_bytes: float, top_k: float, su_bw: float,
                  su_lat: float, so_bw: float, so_lat: float) -> float:
    """One token dispatch (or combine) over an expert-parallel group of `group`
    chips, `in_domain` per scale-up domain, for `token_bytes` of tokens per chip
    (serving's tensor-parallel experts: one domain).

    Hierarchical, as DeepEP and Megatron's HybridEP do it: a token crosses the
    scale-out network once per remote domain holding one of its top_k experts
    (expected count under uniform routing), to the peer chip there, which
    forwards it over the scale-up fabric; the two fabrics work at once.  Latency:
    one message per in-domain peer and one per remote domain."""
    if group <= 1.0:
        return 0.0
    domains = math.ceil(group / in_domain)
    if domains > 1.0:
        remote = (domains - 1.0) * (1.0 - math.pow(1.0 - 1.0 / domains, top_k))
        scale_up = token_bytes * top_k * (group - 1.0) / group    # local peers and forwarding
        return (max(scale_up / su_bw, token_bytes * remote / so_bw)
                + (in_domain - 1.0) * su_lat + (domains - 1.0) * so_lat)
    return token_bytes * top_k * (in_domain - 1.0) / group / su_bw + (in_domain - 1.0) * su_lat


def gemm_params(job, chip) -> float:
    """Active parameters per token weighted by their GEMMs' speed: a routed
    expert's narrow FFN runs its grouped GEMMs below dense efficiency, by
    width / (width + expert_w0) (calibrated on MoE measurements, docs/MODEL.md)."""
    width = job[J_EXPERT_WIDTH]
    if width <= 0.0:
        return job[J_ACTIVE]
    return job[J_DENSE] + (job[J_ACTIVE] - job[J_DENSE]) * (width + chip[C_EXPERT_W0]) / width


def memory_floor(job) -> float:
    """Bytes the job needs across all its chips at the very least: training state
    (weights, gradients, optimizer) or inference weights, activations and KV aside."""
    if job[J_KIND] == 0:
        return (STATE_BYTES + OPTIMIZER_BYTES) * job[J_PARAMS]
    return job[J_PARAMS] * job[J_WBYTES]


def arithmetic(job, chip) -> tuple[float, float]:
    """(peak FLOP/s, sustained fraction on wide GEMMs) at the job's precision: FP4
    where the chip has FP4 arithmetic, else FP4 weights multiply at the FP8 rate."""
    if job[J_PRECISION] == BF16:
        return chip[C_PEAK_BF16], chip[C_EFF_BF16]
    if job[J_PRECISION] == FP4 and chip[C_PEAK_FP4] > 0.0:
        return chip[C_PEAK_FP4], chip[C_EFF_FP4]
    return chip[C_PEAK_FP8], chip[C_EFF_FP8]


class Layout:
    """One evaluated layout; the fields mirror OUTPUTS."""

    __slots__ = OUTPUTS + ("score",)

    def __init__(self) -> None:
        for name in OUTPUTS:
            setattr(self, name, 0.0)
        self.reason = NO_LAYOUT
        self.score = -INF
        self.mem_per_chip = INF

    def beats(self, other: "Layout") -> bool:
        a, b = progress(self.reason), progress(other.reason)
        if a != b:
            return a > b
        if self.score != other.score:
            return self.score > other.score
        return self.mem_per_chip < other.mem_per_chip
