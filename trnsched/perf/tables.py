"""Turn typed jobs and chip types into the flat float64 tables the scoring core reads."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from trnsched.inputs.catalog import ChipType, calibration, default_pue
from trnsched.inputs.jobs import Job
from trnsched.perf import columns as col

INF = math.inf
PRECISION_CODES = {"bf16": col.BF16, "fp8": col.FP8, "fp4": col.FP4}
WEIGHT_BYTES = {"bf16": 2.0, "fp8": 1.0, "fp4": 0.5}


def job_row(job: Job) -> np.ndarray:
    m = job.model
    r = np.zeros(col.JOB_COLUMNS)
    r[col.J_KIND] = 0.0 if job.is_train else 1.0
    r[col.J_PARAMS] = m.params_b * 1e9
    r[col.J_ACTIVE] = m.active_params_b * 1e9
    r[col.J_DENSE] = m.dense_params_b * 1e9
    r[col.J_LAYERS] = m.layers
    r[col.J_HIDDEN] = m.hidden
    r[col.J_ATTN_DIM] = m.heads * m.head_dim
    r[col.J_KV_DIM] = m.kv_elements
    r[col.J_KV_HEADS] = m.kv_heads
    r[col.J_HEADS] = m.heads
    r[col.J_EXPERTS] = m.experts
    r[col.J_TOP_K] = m.top_k
    r[col.J_EXPERT_WIDTH] = m.expert_width
    r[col.J_VOCAB] = m.vocab
    r[col.J_PRECISION] = PRECISION_CODES[job.precision]
    r[col.J_WBYTES] = WEIGHT_BYTES[job.precision]
    r[col.J_KV_BYTES] = 2.0 if job.precision == "bf16" else 1.0
    r[col.J_SEQ_LEN] = job.seq_len
    r[col.J_BATCH_SEQS] = job.batch_seqs
    r[col.J_TOKENS] = job.tokens
    r[col.J_BATCH] = job.batch
    r[col.J_PROMPT] = job.prompt_tokens
    r[col.J_OUTPUT] = job.output_tokens
    r[col.J_RATE] = job.rate_rps
    r[col.J_SLO_TTFT] = job.slo_ttft_ms / 1e3 if job.slo_ttft_ms else INF
    r[col.J_SLO_TPOT] = job.slo_tpot_ms / 1e3 if job.slo_tpot_ms else INF
    r[col.J_DURATION_H] = job.duration_h
    r[col.J_DEADLINE_H] = job.deadline_h if job.deadline_h is not None else INF
    r[col.J_ARRIVAL_H] = job.arrival_h
    hints = job.parallelism
    r[col.J_HINT_TP] = hints.get("tp", 0)
    r[col.J_HINT_PP] = hints.get("pp", 0)
    r[col.J_HINT_DP] = hints.get("dp", 0)
    r[col.J_HINT_EP] = hints.get("ep", 0)
    r[col.J_OFFLINE] = 1.0 if job.offline else 0.0
    return r


def chip_row(chip: ChipType, *, pue: float | None = None, calib: Mapping | None = None) -> np.ndarray:
    k = calibration(chip.family, calib)
    r = np.zeros(col.CHIP_COLUMNS)
    r[col.C_PEAK_BF16] = chip.peak_bf16_tflops * 1e12
    r[col.C_PEAK_FP8] = chip.peak_fp8_tflops * 1e12
    r[col.C_PEAK_FP4] = chip.peak_fp4_tflops * 1e12
    r[col.C_HBM] = chip.hbm_gb * 1e9
    r[col.C_HBM_BW] = chip.hbm_tbps * 1e12
    pue = default_pue() if pue is None else pue
    r[col.C_IDLE_KW] = chip.idle_w * pue / 1000.0
    r[col.C_BUSY_KW] = (chip.tdp_w - chip.idle_w) * pue / 1000.0
    r[col.C_HOST_KW] = chip.host_w * pue / 1000.0
    r[col.C_DOMAIN] = chip.domain_size
    r[col.C_SU_BW] = chip.scaleup_gbps * 1e9
    r[col.C_SU_LAT] = chip.scaleup_latency_us * 1e-6
    r[col.C_SO_BW] = chip.scaleout_gbps * 1e9
    r[col.C_SO_LAT] = chip.scaleout_latency_us * 1e-6
    r[col.C_PRICE_HR] = chip.price_per_chip_hour
    r[col.C_EFF_BF16] = k["eff_bf16"]
    r[col.C_EFF_FP8] = k["eff_fp8"]
    r[col.C_EFF_FP4] = k["eff_fp4"]
    r[col.C_EFF_PREFILL] = k["eff_prefill"]
    r[col.C_EFF_HBM] = k["eff_hbm"]
    r[col.C_EFF_NET] = k["eff_net"]
    r[col.C_GEMM_W0] = k["gemm_w0"]
    r[col.C_LAYER_OVERHEAD] = k["layer_overhead_us"] * 1e-6
    r[col.C_REQUEST_OVERHEAD] = k["request_overhead_ms"] * 1e-3
    r[col.C_MEM_RESERVE] = k["mem_reserve"]
    r[col.C_A2A_OVERLAP] = k["a2a_overlap"]
    r[col.C_EXPERT_W0] = k["expert_w0"]
    return r


def job_table(jobs: Sequence[Job]) -> np.ndarray:
    return np.ascontiguousarray(np.array([job_row(j) for j in jobs], dtype=np.float64).reshape(-1, col.JOB_COLUMNS))


def chip_table(chips: Sequence[ChipType], *, pue: float | None = None, calib: Mapping | None = None) -> np.ndarray:
    rows = [chip_row(c, pue=pue, calib=calib) for c in chips]
    return np.ascontiguousarray(np.array(rows, dtype=np.float64).reshape(-1, col.CHIP_COLUMNS))
