"""What one training stage changes, as the one module accelerate prepares.

DDP, FSDP2 and DeepSpeed each expect one model per `prepare` call: FSDP2 shards only the last model
given, and DeepSpeed refuses a second model for its one engine. Stage 1 trains two networks (the
AlignFormer and a LoRA inside the DiT), so both live in `StageModules` and the whole training step
runs inside its `forward`, where the wrappers' hooks (all-gather, gradient reduction) see every use of
their parameters. Stage 2 holds the AlignFormer alone (the DiT is frozen and runs outside), stage 0
the DiT alone.

`_no_split_modules` names the blocks of both networks; accelerate's transformer-based FSDP wrap
policy keeps only the classes a given instance holds, so one accelerate config serves every stage
(`fsdp_transformer_layer_cls_to_wrap` is left unset on purpose).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..models.alignformer import AlignFormer


class StageModules(torch.nn.Module):
    """The trainable networks of a stage: `alignformer` and/or `transformer` (either may be None)."""

    _no_split_modules = ["WanTransformerBlock", "CrossAttentionBlock"]

    def __init__(self, alignformer: AlignFormer | None = None, transformer: torch.nn.Module | None = None):
        super().__init__()
        if alignformer is None and transformer is None:
            raise ValueError("a training stage needs at least one network to train")
        self.alignformer = alignformer
        self.transformer = transformer

    def forward(self, step: Callable, *args, **kwargs):
        """Run `step(self, *args, **kwargs)`: the stage's computation, under the distributed wrapper's hooks."""
        return step(self, *args, **kwargs)


def keep_in_fp32(name: str, patterns: list[str] | None) -> bool:
    """diffusers' rule for `_keep_in_fp32_modules`: a parameter stays fp32 when a pattern is one of its name's parts."""
    return bool(patterns) and any(pattern in name.split(".") for pattern in patterns)


def cast_frozen(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Cast the frozen weights to `dtype` as `from_pretrained(torch_dtype=...)` would, sparing the modules the
    model keeps in fp32 (Wan: time embedder, norms, scale_shift_table); trainable weights stay fp32 masters."""
    patterns = getattr(model, "_keep_in_fp32_modules", None)
    for name, param in model.named_parameters():
        if param.requires_grad or keep_in_fp32(name, patterns):
            param.data = param.data.float()
        elif param.is_floating_point():
            param.data = param.data.to(dtype)
