"""Fixed modelling constants of the performance model (not fitted; docs/MODEL.md
gives their sources).  The compiled core reads them from here at import, and the
reference model imports them, so each value is written once."""

ACT_BYTES_FULL = 34.0      # activation bytes per token, layer and hidden unit (Korthikanti et al. 2022, flash attention)
ACT_BYTES_RECOMPUTE = 2.0  # full recompute keeps only each layer's bf16 input
LOGIT_BYTES = 4.0          # fp32 logits per token and vocabulary entry for the loss, split by tp (Korthikanti et al. 2022)
RECOMPUTE_FLOPS = 4.0 / 3.0
STATE_BYTES = 4.0          # bf16 weights + bf16 gradients per parameter
OPTIMIZER_BYTES = 12.0     # fp32 master weights + Adam m and v, sharded over data parallel (ZeRO-1)
DP_OVERLAP = 0.5           # share of compute time that hides the gradient reduction
VIRTUAL_MAX = 8.0          # interleaved pipeline: at most 8 model chunks per device,
CHUNK_LAYERS_MIN = 2.0     # each of at least 2 layers (Narayanan et al. 2021)
LATENCY_SLACK = 1.3        # serving with no batch or SLO: latency a practitioner accepts over the best tp-only layout
SERVICE_TPOT_S = 0.2       # ... and the TPOT it lets a replica's batch grow to: MLPerf Inference's server-scenario
                           # limit for Llama 2 70B (200 ms, 99th percentile; MLCommons inference rules)
LOAD_STEPS = 12            # the sequences in flight under a request rate: at most this many root-finding steps,
LOAD_SETTLED = 1e-3        # done within this share
MEM_BOUND_POWER = 0.75     # share of the busy power (TDP - idle) a chip draws while it streams weights and
                           # KV cache at full HBM bandwidth: H100 SXM measured 553 W streaming at 2.85 TB/s
                           # against 698 W in a bf16 GEMM and 119 W idle, (553-119)/(698-119) = 0.75
                           # (bench/gpu_power.py, 2026-11-27).  Decode's launch gaps and collectives draw
                           # idle on top (T(b)'s fixed and wire terms), which is why whole token phases
                           # average lower: H100 380 W, A100 250 W (Splitwise, arXiv 2311.18677).
# Disaggregated serving (perf/reference/pools.py): headroom a pool keeps under a steady Poisson load.
PREFILL_UTIL = 0.8         # most of a prefill replica's time its prompts may take: M/D/1 waits grow as
                           # rho / (1 - rho), 2x the service time at 0.8; the TTFT SLO may ask for less
DECODE_UTIL = 0.9          # share of a decode replica's capacity (batch at the TPOT cap) the rate may use
LINK_UTIL = 0.8           # share of a decode replica's links the KV caches it takes in may use
POOL_FIXED_POINT = 30      # Little's-law iterations for the sequences a decode replica holds in flight
