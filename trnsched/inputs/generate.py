"""Seeded synthetic workloads: a jobs file and a fleet file of the default fleet's kinds.

Distributions (all draws from one `random.Random(seed)`, so a seed fixes the files):

Fleet, `racks` racks in pods of 40:
- rack kinds by share of racks: H100 8-GPU node 30%, H200 node 18%, B200 node 10%,
  Trn3 Gen2 UltraServer (144) 14%, Trn2 UltraServer (64) 10%, GB200 NVL72 12%,
  hybrid Trn3 72 + GB200 36 rack 6%.  About 40 chips per rack on average, so
  375 racks is about 15,000 chips and 1,250 racks about 50,000.
- busy chips: 55% of racks idle, 25% half busy, 10% a quarter busy, 10% full.
- power caps as in the default fleet: 10.2 kW (H100/H200 nodes), 14.3 kW (B200),
  172 kW (Trn3 UltraServer), 52 kW (Trn2 UltraServer), 132 kW (NVL72), 138 kW (hybrid).

Jobs:
- kind: pre-training 12%, fine-tuning 28%, inference services 60%.
- priority 1..5 with probabilities 0.35, 0.25, 0.2, 0.12, 0.08.
- precision: fp8 for 40%.
- constraints: 8% Neuron only, 8% CUDA only, 4% an allow-list of two chip types.
- pre-training: a model among Llama 3 8B/70B/405B, Mixtral 8x22B, DeepSeek-V3,
  Qwen3-235B-A22B, gpt-oss-120b; tokens log-uniform 1e10..1e12; sequence 4,096 or
  8,192; 512 to 4,096 sequences per step; chips between 64..256 and 4x that; 30%
  with a deadline of 48..720 h.
- fine-tuning: Llama 3 8B/70B, Llama 2 7B, MPT-7B, Mixtral 8x7B; tokens
  log-uniform 1e8..1e10; sequence 2,048 or 4,096; 64 to 512 sequences per step;
  40% with a deadline of 4..72 h.
- inference: Llama 3 8B/70B, Llama 2 70B, Mixtral 8x7B, gpt-oss-120b,
  DeepSeek-V3, Qwen3-235B-A22B; rate log-uniform 0.5..50 req/s; prompt 256..8,192
  and output 64..1,024 tokens (log-uniform); 70% with SLOs (TTFT 300..3,000 ms,
  TPOT 20..100 ms); running 1..24 h.

UltraCluster scale (`ultracluster=True`): pods of 64 racks, each pod one kind
by share of pods: Trn3 Gen2 UltraServers 55%, GPU (the node and NVL72 kinds
above, in their proportions) 30%, Trn2 UltraServers 10%, hybrid racks 5%.
13,000 racks (seed 0): 6,216 Trn3 UltraServers, 384 hybrid racks, 1.12M chips, 204 pods.
Busy chips and power caps as above.  Jobs as above, but pre-training asks for
256 to 4,096 chips and up to 4x that, as a cluster of this size is for.

`random_job` draws single jobs for the scoring core's tests and benchmark
instead: every preset, and sizes, shapes, SLOs, hints and deadlines wide enough
that every outcome (fits, memory, batch, SLO, rate, deadline) occurs.
"""
from __future__ import annotations

import math
import random

import numpy as np

from trnsched.inputs.catalog import builtin_chips, builtin_models

RACK_KINDS = [  # (share, chips, power cap kW, name)
    (0.30, {"h100": 8}, 10.2, "h100"),
    (0.18, {"h200": 8}, 10.2, "h200"),
    (0.10, {"b200": 8}, 14.3, "b200"),
    (0.14, {"trn3": 144}, 172.0, "trn3us"),
    (0.10, {"trn2": 64}, 52.0, "trn2us"),
    (0.12, {"gb200": 72}, 132.0, "nvl72"),
    (0.06, {"trn3": 72, "gb200": 36}, 138.0, "hybrid"),
]
BUSY = [(0.55, 0.0), (0.25, 0.5), (0.10, 0.25), (0.10, 1.0)]
PRIORITIES = [(0.35, 1), (0.25, 2), (0.20, 3), (0.12, 4), (0.08, 5)]
PRETRAIN = ["llama3-8b", "llama3-70b", "llama3-405b", "mixtral-8x22b", "deepseek-v3", "qwen3-235b-a22b",
            "gpt-oss-120b"]
FINETUNE = ["llama3-8b", "llama3-70b", "llama2-7b", "mpt-7b", "mixtral-8x7b"]
SERVING = ["llama3-8b", "llama3-70b", "llama2-70b", "mixtral-8x7b", "gpt-oss-120b", "deepseek-v3",
           "qwen3-235b-a22b"]
PODS_OF = 40
ULTRA_PODS_OF = 64
ULTRA_POD_KINDS = [(0.55, "trn3"), (0.30, "gpu"), (0.10, "trn2"), (0.05, "hybrid")]
GPU_KINDS = [k for k in RACK_KINDS if k[3] in ("h100", "h200", "b200", "nvl72")]


def _pick(rng: random.Random, table):
    x, acc = rng.random(), 0.0
    for p, value in table:
        acc += p
        if x < acc:
            return value
    return table[-1][1]


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _busy(chips: dict[str, int], cap_kw: float, share: float, catalog: dict) -> dict[str, int]:
    """Busy chips per type: `share` of each, or the largest of BUSY's shares under
    it whose draw (busy chips at TDP, the rest idle, hosts) fits the cap.  A hybrid
    rack's cap is below its full draw on purpose (its two chip types share it), so
    a fully busy hybrid rack would be a fleet that cannot exist."""
    for s in sorted({b for _, b in BUSY if b <= share}, reverse=True):
        used = {t: int(n * s) for t, n in chips.items()}
        watts = sum(used[t] * catalog[t].tdp_w + (n - used[t]) * catalog[t].idle_w + n * catalog[t].host_w
                    for t, n in chips.items())
        if watts <= cap_kw * 1000.0:
            return used
    return {t: 0 for t in chips}


def generate_fleet(racks: int, seed: int, ultracluster: bool = False) -> dict:
    rng = random.Random(f"fleet-{seed}")
    if ultracluster:
        return _ultracluster_fleet(rng, racks, seed)
    kinds = [(share, (chips, cap, name)) for share, chips, cap, name in RACK_KINDS]
    catalog = builtin_chips()
    out = []
    for i in range(racks):
        chips, cap, name = _pick(rng, kinds)
        used = _busy(chips, cap, _pick(rng, BUSY), catalog)
        out.append({"id": f"p{i // PODS_OF}-{name}-{i}", "pod": f"pod-{i // PODS_OF}", "chips": dict(chips),
                    "used": {t: n for t, n in used.items() if n}, "power_cap_kw": cap})
    return {"name": f"generated fleet ({racks} racks, seed {seed})", "pue": 1.2, "racks": out}


def _ultracluster_fleet(rng: random.Random, racks: int, seed: int) -> dict:
    by_name = {name: (chips, cap) for _, chips, cap, name in RACK_KINDS}
    gpu = [(share, name) for share, _, _, name in GPU_KINDS]
    total = sum(share for share, _ in gpu)
    gpu = [(share / total, name) for share, name in gpu]
    catalog = builtin_chips()
    out = []
    pod_kind = None
    for i in range(racks):
        pod = i // ULTRA_PODS_OF
        if i % ULTRA_PODS_OF == 0:
            pod_kind = _pick(rng, ULTRA_POD_KINDS)
        name = {"trn3": "trn3us", "trn2": "trn2us", "hybrid": "hybrid"}.get(pod_kind) or _pick(rng, gpu)
        chips, cap = by_name[name]
        used = _busy(chips, cap, _pick(rng, BUSY), catalog)
        out.append({"id": f"u{pod}-{name}-{i}", "pod": f"pod-{pod}", "chips": dict(chips),
                    "used": {t: n for t, n in used.items() if n}, "power_cap_kw": cap})
    return {"name": f"generated UltraCluster ({racks} racks, seed {seed})", "pue": 1.2, "racks": out}


def generate_jobs(count: int, seed: int, ultracluster: bool = False) -> dict:
    rng = random.Random(f"jobs-{seed}")
    sizes = [256, 512, 1024, 2048, 4096] if ultracluster else [64, 128, 256]
    jobs = []
    for i in range(count):
        kind = _pick(rng, [(0.12, "pretrain"), (0.28, "finetune"), (0.60, "serve")])
        job: dict = {"id": f"{kind}-{i}", "priority": _pick(rng, PRIORITIES),
                     "precision": "fp8" if rng.random() < 0.4 else "bf16"}
        rule = rng.random()
        if rule < 0.08:
            job["stack"] = "neuron"
        elif rule < 0.16:
            job["stack"] = "cuda"
        elif rule < 0.20:
            job["chip_types"] = rng.sample(["h100", "h200", "b200", "gb200", "trn2", "trn3"], 2)
        if kind == "pretrain":
            lo = rng.choice(sizes)
            job.update(kind="train", model=rng.choice(PRETRAIN), tokens=float(f"{_log_uniform(rng, 1e10, 1e12):.3g}"),
                       seq_len=rng.choice([4096, 8192]), batch_seqs=rng.choice([512, 1024, 2048, 4096]),
                       chips={"min": lo, "max": 4 * lo})
            if rng.random() < 0.3:
                job["deadline_h"] = float(rng.randint(48, 720))
        elif kind == "finetune":
            job.update(kind="train", model=rng.choice(FINETUNE), tokens=float(f"{_log_uniform(rng, 1e8, 1e10):.3g}"),
                       seq_len=rng.choice([2048, 4096]), batch_seqs=rng.choice([64, 128, 256, 512]))
            if rng.random() < 0.4:
                job["deadline_h"] = float(rng.randint(4, 72))
        else:
            job.update(kind="infer", model=rng.choice(SERVING), rate_rps=round(_log_uniform(rng, 0.5, 50), 2),
                       prompt_tokens=int(_log_uniform(rng, 256, 8192)), output_tokens=int(_log_uniform(rng, 64, 1024)),
                       duration_h=float(rng.randint(1, 24)))
            if rng.random() < 0.7:
                job["slo"] = {"ttft_ms": float(rng.randint(300, 3000)), "tpot_ms": float(rng.randint(20, 100))}
        jobs.append(job)
    return {"jobs": jobs}


def generate_workload(jobs: int, racks: int, seed: int = 0, ultracluster: bool = False) -> tuple[dict, dict]:
    """(jobs.json, fleet.json) contents for `jobs` jobs on `racks` racks."""
    return generate_jobs(jobs, seed, ultracluster), generate_fleet(racks, seed, ultracluster)


def random_job(rng: np.random.Generator, i: int) -> dict:
    """One job (a jobs.json entry) for the scoring core's tests and benchmark:
    any preset model, bf16 or fp8.  Training (half): sequences of 2^9..2^14
    tokens, 2^0..2^11 per step, 1e8..1e13 tokens (log-uniform); 30% with a
    deadline of 1..2,000 h, 15% with tp/pp hints.  Inference: prompts of
    1..9,000 and answers of 1..3,000 tokens, 0..60 req/s, 0.5..48 h; half with
    SLOs (TTFT 20..4,000 ms, TPOT 2..120 ms), 30% with a fixed batch of 1..600,
    10% with tp/dp hints."""
    models = sorted(builtin_models())
    model = models[rng.integers(len(models))]
    precision = ("bf16", "fp8")[rng.integers(2)]
    if rng.random() < 0.5:
        raw = dict(id=f"t{i}", kind="train", model=model, precision=precision,
                   seq_len=int(2 ** rng.integers(9, 15)), batch_seqs=int(2 ** rng.integers(0, 12)),
                   tokens=float(10 ** rng.uniform(8, 13)))
        if rng.random() < 0.3:
            raw["deadline_h"] = float(rng.uniform(1, 2000))
        if rng.random() < 0.15:
            raw["parallelism"] = {"tp": int(2 ** rng.integers(0, 4)), "pp": int(rng.integers(1, 9))}
    else:
        raw = dict(id=f"i{i}", kind="infer", model=model, precision=precision,
                   prompt_tokens=int(rng.integers(1, 9000)), output_tokens=int(rng.integers(1, 3000)),
                   rate_rps=float(rng.uniform(0, 60)), duration_h=float(rng.uniform(0.5, 48)))
        if rng.random() < 0.5:
            raw["slo"] = {"ttft_ms": float(rng.uniform(20, 4000)), "tpot_ms": float(rng.uniform(2, 120))}
        if rng.random() < 0.3:
            raw["batch"] = int(rng.integers(1, 600))
        if rng.random() < 0.1:
            raw["parallelism"] = {"tp": int(2 ** rng.integers(0, 4)), "dp": int(rng.integers(1, 4))}
    return raw
