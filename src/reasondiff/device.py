"""`--device auto` and `--dtype auto`, resolved the one way every command does it (a bottom layer: no imports of
ReasonDiff), so data caching, evaluation and the pipeline loader agree on where and in what precision to run."""

from __future__ import annotations

DEVICE_HELP = "'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1', ..."


def resolve_device(device: str = "auto", dtype: str = "auto"):
    """`(device, torch dtype)`: auto is CUDA when available, and bfloat16 on CUDA, float32 on CPU."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return device, getattr(torch, dtype)
