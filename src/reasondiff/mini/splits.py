"""SynthWorld splits: training clips, and unpaired benchmarks in the layout `reasondiff data build-unpaired` writes.

- Training clips (for `reasondiff.data.cache.write_cache`): every (agent, object) pair except the
  held-out ones, random timing, per-frame captions.
- Unpaired benchmark (the paper's protocol, §4.1): the image is the clip's first, last or middle
  frame (seeded, a third each) and the prompt names the agent and the room only ("a cat plays in
  the kitchen"), as in the paper's example: the model must infer where the image belongs and what
  happened. Ground truth kept: true position, every frame's caption, the event's contact frame.
- Compositional benchmark: the same protocol on the held-out (agent, object) pairs.
- Customisation benchmark (§4.4): one image of a changed object, prompts with each agent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.cache import CacheInput
from .world import AGENTS, OBJECTS, ROOMS, EventScript, sample_script

HELD_OUT_PAIRS = frozenset({("pig", "window"), ("ball", "vase"), ("cat", "tower"), ("dog", "glass")})
TRAIN_PAIRS = frozenset((a, o) for a in AGENTS for o in OBJECTS) - HELD_OUT_PAIRS
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2, "compositional": 3, "customisation": 4}


def unpaired_prompt(script: EventScript) -> str:
    return f"a {script.agent} plays in the {script.room}"


def training_clips(num: int, num_frames: int = 17, size: int = 64, seed: int = SPLIT_SEEDS["train"]) -> Iterator[CacheInput]:
    rng = np.random.default_rng(seed)
    for i in range(num):
        script = sample_script(rng, num_frames, pairs=set(TRAIN_PAIRS))
        yield CacheInput(clip_id=f"sw{seed}-{i:06d}", frames=script.frames(size), captions=script.captions())


def _case(script: EventScript, case_id: str, end: str, out: Path, size: int, prompt: str) -> dict:
    position = {"first": 1, "last": script.num_frames, "middle": script.contact + 1}[end]
    image_path = out / "images" / f"{case_id}.png"
    Image.fromarray(script.render(position - 1, size)).save(image_path)
    return {
        "id": case_id, "image": f"images/{case_id}.png", "prompt": prompt, "image_end": end, "position": position,
        "num_frames": script.num_frames, "captions": script.captions(), "agent": script.agent,
        "object": script.object, "room": script.room, "contact": script.contact + 1,
        "phases": [script.state(t).phase for t in range(script.num_frames)],
    }


def write_benchmark(out_dir: str | Path, split: str, num: int, num_frames: int = 17, size: int = 64) -> Path:
    """Write `OUT/benchmark.jsonl` + `OUT/images/` for split 'test', 'val', 'compositional' or 'customisation'."""
    if split not in SPLIT_SEEDS or split == "train":
        raise ValueError(f"unknown benchmark split {split!r}; choose test, val, compositional or customisation")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SPLIT_SEEDS[split])
    pairs = set(HELD_OUT_PAIRS) if split == "compositional" else set(TRAIN_PAIRS)
    ends = ["first", "last", "middle"]
    rows = []
    if split == "customisation":  # one aftermath image per group, each agent in turn as the prompt's subject
        from .narrator import canonical_script

        agents = list(AGENTS)
        for i in range(num):
            if i % len(agents) == 0:
                obj, room = list(OBJECTS)[int(rng.integers(len(OBJECTS)))], list(ROOMS)[int(rng.integers(len(ROOMS)))]
            script = canonical_script(agents[i % len(agents)], obj, room, num_frames)
            rows.append(_case(script, f"{split}-{i:05d}", "last", out, size, unpaired_prompt(script)))
    else:
        for i in range(num):
            script = sample_script(rng, num_frames, pairs=pairs)
            end = ends[int(rng.integers(len(ends)))]
            rows.append(_case(script, f"{split}-{i:05d}", end, out, size, unpaired_prompt(script)))
    with open(out / "benchmark.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    (out / "info.json").write_text(json.dumps({"split": split, "num": num, "num_frames": num_frames, "size": size,
                                               "seed": SPLIT_SEEDS[split]}, indent=2) + "\n")
    return out
