"""What the GPU scripts (gpu_power.py, gpu_step.py) share: PyTorch with a CUDA
device, or a one-line reason why nothing can be measured."""
from __future__ import annotations

import sys


def cuda_torch():
    """The torch module if a CUDA device is usable, else None (the reason printed)."""
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: nothing measured", file=sys.stderr)
        return None
    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured", file=sys.stderr)
        return None
    return torch


def write_json(text: str, path: str | None) -> None:
    """Print the result and, with --json, keep it."""
    print(text)
    if path:
        with open(path, "w") as fh:
            fh.write(text + "\n")
