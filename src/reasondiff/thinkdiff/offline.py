"""ThinkDiff models that run offline by name: `reasondiff thinkdiff generate --model NAME`.

A name stands for a whole system -- VLM, aligner, diffusion pipeline, the settings they were trained and measured
with, and a bundled episode to run when the user gives none. `reasondiff.mini` registers "mini" (ThinkDiff-mini,
shipped in the package); `thinkdiff` never imports the world above it. A module of its own so that registering
costs `import reasondiff` nothing: the entry is a function, called only when the name is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class OfflineModel:
    vlm: Path  # a folder `cli._load_vlm` opens (the mini VLM's registers in vlm_folders)
    aligner: Path
    pipeline: Callable[[], Any]  # builds the diffusers pipeline the aligned tokens drive (through `render`)
    call: dict = field(default_factory=dict)  # the pipeline call's settings: size, frames, steps, guidance, ...
    instruction: str = ""  # appended to the user's images and texts, as in the VLM's training
    max_new_tokens: int = 64
    sampled: bool = False  # the VLM's answers sampled (the authors') or greedy
    example: Callable[[], list] = list  # the bundled episode: interleaved PIL images and texts


OFFLINE_MODELS: dict[str, Callable[[], OfflineModel]] = {}
