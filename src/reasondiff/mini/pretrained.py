"""The shipped ReasonDiff-mini, and any mini pipeline `python -m reasondiff.mini.build assemble` wrote.

    from reasondiff.mini.pretrained import load_pipeline
    pipe = load_pipeline()            # src/reasondiff/mini/weights/reasondiff-mini
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_path() -> Path:
    return Path(str(resources.files("reasondiff") / "mini" / "weights" / "reasondiff-mini"))


def load_pipeline(path: str | Path | None = None, device: str = "cpu", dtype: str = "float32"):
    """An assembled mini pipeline (default: the shipped one), its LoRA loaded as ReasonDiff's adapter: the same
    path as `--model mini` / `--model FOLDER` (`reasondiff.pipelines.loading.load_pipeline`)."""
    from ..pipelines.loading import load_pipeline as load

    return load(str(path) if path is not None else "mini", device=device, dtype=dtype)[0]
