"""`--device auto` and `--dtype auto`, resolved the one way every command does it (a bottom layer: no imports of
ReasonDiff), so data caching, evaluation and the pipeline loader agree on where and in what precision to run."""

from __future__ import annotations

DEVICE_HELP = "'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1', ..."
DTYPES = ("auto", "float32", "bfloat16", "float16")


def check_device(device: str = "auto", dtype: str = "auto") -> None:
    """ValueError with one line unless `device` is one this machine has and `dtype` a precision we run in.

    Checked before any model loads: torch itself only objects when the first tensor moves, after the weights
    are read (an unknown name, CUDA in a build without it), or never (`meta` holds no data: the run fails
    inside the scheduler)."""
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if device == "auto":
        return
    try:
        kind = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"--device {device!r} is not a device: use {DEVICE_HELP}") from None
    if kind.type == "cpu":
        return
    if kind.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {device}: CUDA is not available on this machine; use --device cpu (or auto)")
        if kind.index is not None and kind.index >= count:
            raise ValueError(f"--device {device}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
        return
    if kind.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"--device {device}: Apple's MPS is not available on this machine; use --device cpu")
        return
    raise ValueError(f"--device {device}: {kind.type} devices cannot run these models; use {DEVICE_HELP}")


def resolve_device(device: str = "auto", dtype: str = "auto"):
    """`(device, torch dtype)`: auto is CUDA when available, and bfloat16 on CUDA, float32 on CPU.
    ValueError (one line) for a device or dtype `check_device` refuses."""
    import torch

    check_device(device, dtype)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return device, getattr(torch, dtype)
