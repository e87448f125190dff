"""One way from a `--model` value to a ready pipeline, shared by `generate`, `eval run` and the studio.

`registry.model_spec` says what the name stands for (a registered model, a hub id or a local folder in the
diffusers layout: Wan2.1-I2V, or a saved ReasonDiff pipeline). A stage-1 LoRA, given with `lora` or found as
`pytorch_lora_weights.safetensors` at the top of a model folder, is loaded as ReasonDiff's adapter, so the
baseline modes run the base model.
"""

from __future__ import annotations

from pathlib import Path

from ..device import resolve_device
from .hub import find_lora
from .registry import KEYFRAME_BACKENDS, model_spec


def load_pipeline(model: str, alignformer: str | Path | None = None, lora: str | Path | None = None,
                  device: str = "auto", dtype: str = "auto"):
    """Returns `(pipeline, device)`; raises OSError/ValueError with the reason when the model cannot load."""
    from ..models.alignformer import AlignFormer
    from .pipeline_reasondiff import ReasonDiffPipeline

    device, torch_dtype = resolve_device(device, dtype)
    spec = model_spec(model)
    if spec.build is not None:  # a model made in code (tiny: random weights, float32 whatever the dtype)
        pipe = spec.build()
    elif spec.backend in KEYFRAME_BACKENDS:  # a diffusers keyframe pipeline, rendered training-free
        return _load_keyframe(spec, alignformer, lora, torch_dtype).to(device), device
    else:
        source = spec.source()
        # a plain Wan2.1 folder needs an AlignFormer from elsewhere; a saved ReasonDiff pipeline brings its own
        extra = {"alignformer": AlignFormer.from_pretrained(alignformer, dtype=torch_dtype)} if alignformer else {}
        pipe = ReasonDiffPipeline.from_pretrained(source, dtype=torch_dtype, **extra)
        if lora is None:
            lora = find_lora(source)
    if lora is not None:
        pipe.load_reasondiff_lora(str(lora))
    return pipe.to(device), device


def _load_keyframe(spec, alignformer, lora, torch_dtype):
    """The folder's own diffusers pipeline class (from model_index.json), wrapped in its keyframe backend. These
    run without ReasonDiff weights, so an AlignFormer or a LoRA for them is refused rather than ignored."""
    import json

    import diffusers

    from .backends import wrap

    for given, option in ((alignformer, "--alignformer"), (lora, "--lora")):
        if given is not None:
            raise ValueError(f"{option} is for ReasonDiff's Wan2.1-I2V pipeline; the {spec.backend} backend renders "
                             "training-free, with no ReasonDiff weights")
    source = spec.source()
    name = json.loads((Path(source) / "model_index.json").read_text())["_class_name"]
    return wrap(getattr(diffusers, name).from_pretrained(source, torch_dtype=torch_dtype))
