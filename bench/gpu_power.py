"""Measure an NVIDIA GPU's board power idle, under a compute-bound GEMM and under a
memory-bound weight stream (decode-like GEMV), to check the power model's
MEM_BOUND_POWER and idle figures (docs/MODEL.md) against a real chip.

    python bench/gpu_power.py [--seconds 12] [--json OUT]

Needs a GPU, nvidia-smi and PyTorch with CUDA (never needed for the tests).
Power is sampled with nvidia-smi every 100 ms while each phase runs; the phase's
figure is the median of its samples after a 2 s ramp.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time

from gpu import cuda_torch, write_json


def sample_power(stop: threading.Event, samples: list[tuple[float, float]]) -> None:
    proc = subprocess.Popen(["nvidia-smi", "--query-gpu=power.draw", "--format=csv,noheader,nounits", "-lms", "100"],
                            stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            try:
                samples.append((time.monotonic(), float(line.strip().split()[0])))
            except (ValueError, IndexError):
                pass
            if stop.is_set():
                break
    finally:
        proc.terminate()
        proc.wait()


def phase(name: str, seconds: float, work, samples) -> dict:
    start = time.monotonic()
    done, elapsed = 0, 0.0
    while elapsed < seconds:
        done += work()
        elapsed = time.monotonic() - start
    watts = [w for t, w in samples if start + 2.0 <= t <= start + elapsed]
    return {"phase": name, "seconds": elapsed, "median_w": statistics.median(watts) if watts else None,
            "samples": len(watts), "work_per_s": done / elapsed}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args(argv)
    torch = cuda_torch()
    if torch is None:
        return 2
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(0)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_power, args=(stop, samples), daemon=True)
    sampler.start()
    time.sleep(1.0)

    def idle():
        time.sleep(0.2)
        return 0

    n = 8192
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)

    def gemm():
        for _ in range(20):
            torch.matmul(a, b)
        torch.cuda.synchronize()
        return 20 * 2 * n ** 3          # FLOPs

    # Decode-like: a batch of 8 tokens against 16 GB of bf16 weights (a 8B-parameter
    # model's worth), read once per step.
    rows = 16 * 1024 ** 3 // 2 // 8192
    w = torch.randn(rows, 8192, device=dev, dtype=torch.bfloat16)
    x = torch.randn(8192, 8, device=dev, dtype=torch.bfloat16)

    def gemv():
        for _ in range(5):
            torch.matmul(w, x)
        torch.cuda.synchronize()
        return 5 * w.numel() * 2        # bytes read

    results = [phase("idle", args.seconds, idle, samples)]
    gemm()
    results.append(phase("gemm bf16 8192^3", args.seconds, gemm, samples))
    gemv()
    results.append(phase("weight stream, batch 8", args.seconds, gemv, samples))
    time.sleep(3.0)
    results.append(phase("idle again", args.seconds, idle, samples))
    stop.set()
    limit = subprocess.run(["nvidia-smi", "--query-gpu=power.limit,clocks.max.sm", "--format=csv,noheader"],
                           capture_output=True, text=True).stdout.strip()
    out = {"gpu": name, "power_limit_and_max_sm_clock": limit, "torch": torch.__version__, "phases": results}
    idle_w = results[0]["median_w"]
    busy, stream = results[1]["median_w"], results[2]["median_w"]
    if idle_w and busy and stream and busy > idle_w:
        out["mem_bound_share_of_busy_power"] = (stream - idle_w) / (busy - idle_w)
    out["gemm_tflops"] = results[1]["work_per_s"] / 1e12
    out["stream_tb_per_s"] = results[2]["work_per_s"] / 1e12
    write_json(json.dumps(out, indent=1), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
