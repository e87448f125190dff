"""SynthWorld's training split: the clips the mini models are trained on, and what they never see.

Training clips (for `reasondiff.data.cache.write_cache`) hold every (agent, object) pair except
`HELD_OUT_PAIRS`, random timing, objects in `world.TRAIN_OBJECT_BANDS`, and per-frame captions. The
benchmark (`mini.bench`) draws its cases from what is held out here and checks them against these clips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..data.cache import CacheInput
from .world import AGENTS, OBJECTS, EventScript, sample_script

HELD_OUT_PAIRS = frozenset({("pig", "window"), ("ball", "vase"), ("cat", "tower"), ("dog", "glass")})
TRAIN_PAIRS = frozenset((a, o) for a in AGENTS for o in OBJECTS) - HELD_OUT_PAIRS
SPLIT_SEEDS = {"train": 0}


def unpaired_prompt(script: EventScript) -> str:
    """The paper's unpaired prompt: the agent and the room only, never what happens (§4.1's example)."""
    return f"a {script.agent} plays in the {script.room}"


def training_clips(num: int, num_frames: int = 17, size: int = 64, seed: int = SPLIT_SEEDS["train"]) -> Iterator[CacheInput]:
    rng = np.random.default_rng(seed)
    for i in range(num):
        script = sample_script(rng, num_frames, pairs=set(TRAIN_PAIRS))
        yield CacheInput(clip_id=f"sw{seed}-{i:06d}", frames=script.frames(size), captions=script.captions())
