"""Time a real training step of a small Llama-shaped model on one GPU, to hold the
model's prediction for the same shape against (`trnsched score`; never needed for
the tests).

    python bench/gpu_step.py [--layers 16 --hidden 2048 --heads 16 --ffn 5632
                              --vocab 32000 --seq 2048 --batch 8] [--json OUT]

Pure bf16: weights, gradients and AdamW state all bf16 (torch's fused AdamW keeps
its state in the parameters' dtype), so 8 bytes per parameter where trnsched
assumes mixed precision's 16 (fp32 master weights and Adam moments); flash
attention through scaled_dot_product_attention, no recompute, one GPU (tp = pp =
dp = 1).  Prints tokens/s (median of 10 steps after 5 warm-up steps), the
parameter count and the jobs-file entry that asks trnsched for the same thing.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from gpu import cuda_torch, write_json


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in (("layers", 16), ("hidden", 2048), ("heads", 16), ("ffn", 5632), ("vocab", 32000),
                          ("seq", 2048), ("batch", 8), ("steps", 10)):
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args(argv)
    torch = cuda_torch()
    if torch is None:
        return 2
    import torch.nn as nn
    import torch.nn.functional as F
    dev = torch.device("cuda")
    h, heads = args.hidden, args.heads

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.n1, self.n2 = nn.RMSNorm(h), nn.RMSNorm(h)
            self.qkv = nn.Linear(h, 3 * h, bias=False)
            self.o = nn.Linear(h, h, bias=False)
            self.up = nn.Linear(h, 2 * args.ffn, bias=False)
            self.down = nn.Linear(args.ffn, h, bias=False)

        def forward(self, x):
            b, s, _ = x.shape
            q, k, v = self.qkv(self.n1(x)).view(b, s, 3, heads, h // heads).unbind(2)
            a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
            x = x + self.o(a.transpose(1, 2).reshape(b, s, h))
            gate, up = self.up(self.n2(x)).chunk(2, dim=-1)
            return x + self.down(F.silu(gate) * up)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(args.vocab, h)
            self.blocks = nn.ModuleList(Block() for _ in range(args.layers))
            self.norm = nn.RMSNorm(h)
            self.head = nn.Linear(h, args.vocab, bias=False)

        def forward(self, ids):
            x = self.emb(ids)
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.norm(x))

    model = Model().to(dev, dtype=torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    ids = torch.randint(0, args.vocab, (args.batch, args.seq + 1), device=dev)
    times = []
    for step in range(5 + args.steps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.float().view(-1, args.vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step >= 5:
            times.append(time.perf_counter() - t)
    step_s = statistics.median(times)
    tokens = args.batch * args.seq
    out = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "params": params,
           "step_s": step_s, "tokens_per_s": tokens / step_s,
           "max_memory_gb": torch.cuda.max_memory_allocated() / 1e9,
           "trnsched_job": {"id": "gpu-step", "kind": "train", "precision": "bf16",
                            "model": {"params_b": params / 1e9, "layers": args.layers, "hidden": h, "heads": heads,
                                      "kv_heads": heads, "ffn": args.ffn, "vocab": args.vocab},
                            "seq_len": args.seq, "batch_seqs": args.batch, "tokens": 1e9,
                            "parallelism": {"tp": 1, "pp": 1}}}
    write_json(json.dumps(out, indent=1), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
