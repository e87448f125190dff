"""The shipped ReasonDiff-mini, and any mini pipeline `python -m reasondiff.mini.build assemble` wrote.

    from reasondiff.mini.pretrained import load_pipeline
    pipe = load_pipeline()            # src/reasondiff/mini/weights/reasondiff-mini
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

NAME = "mini"
STEPS = MINI_STEPS = 10
# Trained without caption dropout, the mini models have no unconditional model for classifier-free guidance to
# extrapolate from: at guidance 5 ReasonDiff-mini v2 lost the image at every narrated frame but the first (17 dB
# against 25-30 dB without guidance, docs/mini.md "The v2 DiT"). Real Wan2.1 was trained for it: 5.0.
GUIDANCE = MINI_GUIDANCE = 1.0
TRAINED_FRAMES = (17,)  # the clip length of SynthWorld's training set (docs/mini.md)


def shipped_path() -> Path:
    return Path(str(resources.files("reasondiff") / "mini" / "weights" / "reasondiff-mini"))


def load_pipeline(path: str | Path | None = None, device: str = "cpu", dtype: str = "float32"):
    """An assembled mini pipeline (default: the shipped one), its LoRA loaded as ReasonDiff's adapter: the same
    path as `--model mini` / `--model FOLDER` (`reasondiff.pipelines.loading.load_pipeline`)."""
    from ..pipelines.loading import load_pipeline as load

    return load(str(path) if path is not None else NAME, device=device, dtype=dtype)[0]


def model_spec():
    """`--model mini`: the shipped pipeline at SynthWorld's 64x64x17, without guidance, narrated by the world's own
    `synthworld:` narrator; the default model of every command."""
    from ..pipelines.registry import ModelSpec

    return ModelSpec(name=NAME, description="ReasonDiff-mini",
                     folder=shipped_path, frames=17, height=64, width=64, steps=STEPS, guidance=GUIDANCE,
                     narrator="synthworld:", trained_frames=TRAINED_FRAMES, default=True,
                     missing="reinstall reasondiff, or build it with scripts/train_mini.sh")
