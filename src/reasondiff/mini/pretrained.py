"""The shipped ReasonDiff-mini, and any mini pipeline `python -m reasondiff.mini.build assemble` wrote.

    from reasondiff.mini.pretrained import load_pipeline
    pipe = load_pipeline()            # src/reasondiff/mini/weights/reasondiff-mini
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..pipelines.loading import LORA_FILE
from ..pipelines.pipeline_reasondiff import ReasonDiffPipeline


def load_pipeline(path: str | Path | None = None, torch_dtype=None) -> ReasonDiffPipeline:
    """An assembled mini pipeline (default: the one shipped in the package), its LoRA as ReasonDiff's adapter."""
    path = Path(path) if path is not None else shipped_path()
    if not (path / "model_index.json").is_file():
        raise ValueError(f"{path} is not an assembled mini model (no model_index.json); build one with "
                         "`python -m reasondiff.mini.build assemble` or scripts/train_mini.sh")
    pipe = ReasonDiffPipeline.from_pretrained(path, **({"torch_dtype": torch_dtype} if torch_dtype else {}))
    if (path / LORA_FILE).is_file():
        pipe.load_reasondiff_lora(str(path))
    return pipe


def shipped_path() -> Path:
    return Path(str(resources.files("reasondiff") / "mini" / "weights" / "reasondiff-mini"))
