# The scoring core's interface, declared once: the column layout of the job and
# chip tables, the reason codes, and the Layout struct whose fields are the
# outputs.  `cpdef enum` members reach Python as ints of trnsched.perf._core
# (anonymous enums, since Cython indexes arrays only with those; the reasons as
# the IntEnum Reason), and the output names are Layout's field names
# (_core.LAYOUT_DTYPE), so trnsched/perf/columns.py reads them all from here.

# The job table: one row per job.
cpdef enum:
    J_KIND = 0          # 0 = train, 1 = infer
    J_PARAMS            # total parameters
    J_ACTIVE            # parameters active per token (= J_PARAMS for dense models)
    J_DENSE             # parameters outside the routed experts
    J_LAYERS
    J_HIDDEN
    J_ATTN_DIM          # heads x head_dim
    J_KV_DIM            # K+V elements cached per token and layer
    J_KV_HEADS          # how many ways the KV cache can be split by tensor parallelism
    J_HEADS
    J_EXPERTS           # 1 for dense models
    J_TOP_K
    J_EXPERT_WIDTH      # a routed expert's FFN width (0 for dense models)
    J_VOCAB             # vocabulary size (0 = unknown: no logits memory)
    J_PRECISION         # a Precision: which peak and efficiency the arithmetic runs at
    J_WBYTES            # bytes per weight (bf16 2, fp8 1, fp4 0.5)
    J_KV_BYTES          # bytes per KV-cache element (bf16 2; fp8 and fp4 jobs keep an fp8 cache)
    J_SEQ_LEN           # train: tokens per sequence
    J_BATCH_SEQS        # train: sequences per optimizer step
    J_TOKENS            # train: total tokens
    J_BATCH             # infer: concurrent sequences per replica, 0 = the model picks
    J_PROMPT            # infer: prompt tokens
    J_OUTPUT            # infer: output tokens
    J_RATE              # infer: requests/s to sustain, 0 = none
    J_SLO_TTFT          # infer: seconds, +inf = none
    J_SLO_TPOT          # infer: seconds, +inf = none
    J_DURATION_H        # infer: hours the service runs
    J_DEADLINE_H        # hours from now, +inf = none
    J_ARRIVAL_H
    J_HINT_TP           # layout hints, 0 = the model picks
    J_HINT_PP
    J_HINT_DP
    J_HINT_EP
    J_OFFLINE           # infer: 1 = offline batch work (rank layouts by throughput alone)
    JOB_COLUMNS

# The chip table: one row per chip type, calibration constants filled in.
cpdef enum:
    C_PEAK_BF16 = 0     # FLOP/s, dense
    C_PEAK_FP8          # FLOP/s, dense
    C_PEAK_FP4          # FLOP/s, dense; 0 = no FP4 arithmetic (FP4 weights multiply at the FP8 rate)
    C_HBM               # bytes
    C_HBM_BW            # bytes/s
    C_BUSY_KW           # kW at the wall above idle at full activity: (TDP - idle) x PUE
    C_IDLE_KW           # kW at the wall when idle: idle x PUE
    C_HOST_KW           # kW at the wall of the chip's host share: host x PUE
    C_DOMAIN            # chips per scale-up domain
    C_SU_BW             # scale-up bytes/s per chip, one direction
    C_SU_LAT            # scale-up seconds per message
    C_SO_BW             # scale-out bytes/s per chip
    C_SO_LAT            # scale-out seconds per message
    C_PRICE_HR          # USD per chip-hour
    C_EFF_BF16          # sustained fraction of bf16 peak on wide GEMMs
    C_EFF_FP8           # sustained fraction of fp8 peak on wide GEMMs
    C_EFF_FP4           # sustained fraction of fp4 peak on wide GEMMs
    C_EFF_PREFILL       # multiplier on the above for inference prefill
    C_EFF_HBM           # sustained fraction of HBM bandwidth
    C_EFF_NET           # sustained fraction of link bandwidth in collectives
    C_GEMM_W0           # per-chip GEMM width at which efficiency halves
    C_LAYER_OVERHEAD    # seconds of fixed cost per layer per forward pass (inference)
    C_REQUEST_OVERHEAD  # seconds of fixed cost per request before the first token
    C_MEM_RESERVE       # fraction of HBM kept for runtime, workspace, fragmentation
    C_A2A_OVERLAP       # share of a step's compute that hides expert all-to-alls (training)
    C_EXPERT_W0         # expert FFN width at which expert GEMMs run at half dense efficiency
    CHIP_COLUMNS

# Why a candidate cannot run, in order of progress: a higher code got further
# through the checks.
cpdef enum Reason:
    OK = 0
    NO_LAYOUT           # no parallel layout exists for this chip count (hints, heads, chips)
    MEMORY              # weights, optimizer state, activations or KV cache do not fit
    BATCH               # training global batch too small to split over this many chips
    SLO_TTFT
    SLO_TPOT
    RATE                # cannot sustain the request rate on this many chips
    DEADLINE

cpdef enum:
    N_TP_OPTIONS = 8    # tensor-parallel degrees tried: 1, 2, 4, ..., 128
    MAX_BATCH = 512     # largest concurrent batch per replica an engine runs

cpdef enum Precision:
    BF16 = 0
    FP8
    FP4

# How a candidate's inference layouts compete (reference/serving.py: ranking()).
cpdef enum Ranking:
    BY_LATENCY = 0      # the job fixes its batch: the fastest request
    BY_SLO              # within the job's SLOs, the most throughput
    BY_THROUGHPUT       # offline batch work: the most throughput
    AS_PRACTITIONER     # neither: the most throughput at near the best tp-only latency

# One evaluated layout.  Every field but `score` is an output of `score()`,
# under the field's name (plus `feasible`, which is reason == OK).
ctypedef struct Layout:
    double tp, pp, dp, ep, recompute
    double step_time_s, tokens_per_s, mfu, ttft_s, tpot_s
    double latency_s    # inference: one request's TTFT + output x TPOT on an idle replica
    double batch, max_batch, replicas, replicas_needed
    double duration_h, power_kw, energy_kwh, cost_usd, mem_per_chip
    double score        # how the layout ranks among those of its reason (higher is better)
    int reason

# Disaggregated serving: the link between a job's prefill and decode pools.
cpdef enum Link:
    FUSED = 0           # one rack's (or hybrid rack's) scale-up fabric
    SCALE_OUT           # the data-centre network

# One disaggregated candidate: both pools, sized for the job's rate, and the
# job's combined metrics (score_pools(); reference/pools.py).  Every field is an
# output under its name.
ctypedef struct Pools:
    double prefill_tp, prefill_pp, prefill_replicas, prefill_chips, prefill_util
    double prefill_power_kw, prefill_mem_per_chip
    double decode_tp, decode_pp, decode_replicas, decode_chips, decode_batch, decode_util
    double decode_power_kw, decode_mem_per_chip
    double kv_bytes, kv_transfer_s, kv_link_share
    double ttft_s, tpot_s, latency_s, tokens_per_s, duration_h, power_kw, energy_kwh, cost_usd
    int reason
