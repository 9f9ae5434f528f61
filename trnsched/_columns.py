"""Column layout of the flat tables the scoring core reads and writes.

The core takes a job table (one row per job), a chip table (one row per chip
type, with the calibrated efficiency constants already filled in) and, per
candidate, a job row index, a chip row index, a chip count and the number of
scale-up domains the chips span.  `_core.pyx` repeats these numbers as a C
enum; `tests/test_core.py` checks that the two agree.
"""

# --- job table -------------------------------------------------------------
J_KIND = 0          # 0 = train, 1 = infer
J_PARAMS = 1        # total parameters
J_ACTIVE = 2        # parameters active per token (= J_PARAMS for dense models)
J_DENSE = 3         # parameters outside the routed experts
J_LAYERS = 4
J_HIDDEN = 5
J_ATTN_DIM = 6      # heads x head_dim
J_KV_DIM = 7        # K+V elements cached per token and layer
J_KV_HEADS = 8      # how many ways the KV cache can be split by tensor parallelism
J_HEADS = 9
J_EXPERTS = 10      # 1 for dense models
J_TOP_K = 11
J_FP8 = 12          # 1 = fp8, 0 = bf16
J_SEQ_LEN = 13      # train: tokens per sequence
J_BATCH_SEQS = 14   # train: sequences per optimizer step
J_TOKENS = 15       # train: total tokens
J_BATCH = 16        # infer: concurrent sequences per replica, 0 = the model picks
J_PROMPT = 17       # infer: prompt tokens
J_OUTPUT = 18       # infer: output tokens
J_RATE = 19         # infer: requests/s to sustain, 0 = none
J_SLO_TTFT = 20     # infer: seconds, +inf = none
J_SLO_TPOT = 21     # infer: seconds, +inf = none
J_DURATION_H = 22   # infer: hours the service runs
J_DEADLINE_H = 23   # hours from now, +inf = none
J_ARRIVAL_H = 24
J_HINT_TP = 25      # layout hints, 0 = the model picks
J_HINT_PP = 26
J_HINT_DP = 27
J_HINT_EP = 28
JOB_COLUMNS = 29

# --- chip table ------------------------------------------------------------
C_PEAK_BF16 = 0     # FLOP/s, dense
C_PEAK_FP8 = 1      # FLOP/s, dense
C_HBM = 2           # bytes
C_HBM_BW = 3        # bytes/s
C_BUSY_KW = 4       # kW at the wall above idle at full activity: (TDP - idle) x PUE
C_IDLE_KW = 5       # kW at the wall when idle: idle x PUE
C_DOMAIN = 6        # chips per scale-up domain
C_SU_BW = 7         # scale-up bytes/s per chip, one direction
C_SU_LAT = 8        # scale-up seconds per message
C_SO_BW = 9         # scale-out bytes/s per chip
C_SO_LAT = 10       # scale-out seconds per message
C_PRICE_HR = 11     # USD per chip-hour
C_EFF_BF16 = 12     # sustained fraction of bf16 peak on wide GEMMs
C_EFF_FP8 = 13      # sustained fraction of fp8 peak on wide GEMMs
C_EFF_PREFILL = 14  # multiplier on the above for inference prefill
C_EFF_HBM = 15      # sustained fraction of HBM bandwidth
C_EFF_NET = 16      # sustained fraction of link bandwidth in collectives
C_GEMM_W0 = 17      # per-chip GEMM width at which efficiency halves
C_LAYER_OVERHEAD = 18   # seconds of fixed cost per layer per forward pass (inference)
C_REQUEST_OVERHEAD = 19  # seconds of fixed cost per request before the first token
C_MEM_RESERVE = 20  # fraction of HBM kept for runtime, workspace, fragmentation
CHIP_COLUMNS = 21

# --- reason codes (also the order of progress: a higher code got further) ---
OK = 0
NO_LAYOUT = 1       # no parallel layout exists for this chip count (hints, heads, chips)
MEMORY = 2          # weights, optimizer state, activations or KV cache do not fit
BATCH = 3           # training global batch too small to split over this many chips
SLO_TTFT = 4
SLO_TPOT = 5
RATE = 6            # cannot sustain the request rate on this many chips
DEADLINE = 7


def progress(reason: int) -> int:
    """How far a layout got through the checks: OK beats every failure."""
    return 99 if reason == OK else reason


REASON_NAMES = {OK: "ok", NO_LAYOUT: "no_layout", MEMORY: "memory", BATCH: "batch",
                SLO_TTFT: "slo_ttft", SLO_TPOT: "slo_tpot", RATE: "rate", DEADLINE: "deadline"}

# --- fixed modelling constants (not fitted; see docs/MODEL.md) ---------------
TP_OPTIONS = (1, 2, 4, 8, 16, 32, 64, 128)
MAX_BATCH = 512           # largest concurrent batch per replica an engine runs
ACT_BYTES_FULL = 34.0     # activation bytes per token, layer and hidden unit (Korthikanti et al. 2022, flash attention)
ACT_BYTES_RECOMPUTE = 2.0  # full recompute keeps only each layer's bf16 input
RECOMPUTE_FLOPS = 4.0 / 3.0
STATE_BYTES = 4.0         # bf16 weights + bf16 gradients per parameter
OPTIMIZER_BYTES = 12.0    # fp32 master weights + Adam m and v, sharded over data parallel (ZeRO-1)
DP_OVERLAP = 0.5          # share of compute time that hides the gradient reduction
VIRTUAL_MAX = 8.0         # interleaved pipeline: at most 8 model chunks per device,
CHUNK_LAYERS_MIN = 2.0    # each of at least 2 layers (Narayanan et al. 2021)

OUTPUTS = ("feasible", "reason", "tp", "pp", "dp", "ep", "recompute", "step_time_s", "tokens_per_s",
           "mfu", "ttft_s", "tpot_s", "batch", "max_batch", "replicas", "replicas_needed",
           "duration_h", "power_kw", "energy_kwh", "cost_usd", "mem_per_chip")
