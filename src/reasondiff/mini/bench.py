"""SynthWorld-Bench v2: benchmark cases whose scenes no training clip shows.

v1's test cases were fresh seeds of the training distribution: 65 % of their condition images were
pixel-identical to a training frame (a room, an object at one of ~10 pixel columns). v2 cases put the
object in bands of the frame no training clip uses (`world.HELD_OUT_OBJECT_BANDS`), and the builder checks
each case against the training set itself: a case whose image is within `MIN_DISTANCE` (RMS, 0-255 scale)
of any training frame, or whose true clip is within it of any training clip, is drawn again. The report
gives the nearest-neighbour distances of what was kept.

Splits:
- `unpaired`: the paper's protocol; the image is the true clip's first, last or contact frame (a third
  each) and the prompt names the agent and the room only.
- `unseen-pairs`: the same on the (agent, object) pairs training never shows together.
- `counterfactual`: groups of four cases sharing one image with no agent in it (the start or the end of
  the story); each prompt names another agent, so the prompt alone decides who must appear (§4.4's
  prompt-driven customisation).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from .narrator import canonical_script
from .splits import HELD_OUT_PAIRS, TRAIN_PAIRS, training_clips, unpaired_prompt
from .world import AGENTS, HELD_OUT_OBJECT_BANDS, OBJECTS, ROOMS, EventScript, draw_object_x, sample_script

SPLITS = ("unpaired", "unseen-pairs", "counterfactual")
MIN_DISTANCE = 5.0  # RMS on the 0-255 scale; v1 test images sat at 0 (identical), held-out scenes at a median of 17
TRAIN_CLIPS = 1500  # the shipped model's training set: `training_clips(1500)` (scripts/train_mini.sh)
MAX_CASES = 100_000  # ~60 ms a case on one core: about 2 hours
MAX_TRAIN_CLIPS = 10 * TRAIN_CLIPS


class NearestTraining:
    """Nearest-neighbour RMS distances to the frames and clips of the training set."""

    def __init__(self, clips: int = TRAIN_CLIPS, num_frames: int = 17, size: int = 64):
        videos = np.stack([c.frames for c in training_clips(clips, num_frames, size)]).astype(np.float32)
        self.num_frames = num_frames
        self.frames = videos.reshape(-1, size * size * 3)
        self.clips = videos.reshape(len(videos), -1)
        self.frame_norms = (self.frames**2).sum(1)
        self.clip_norms = (self.clips**2).sum(1)

    @staticmethod
    def _nearest(bank, norms, query) -> float:
        q = query.astype(np.float32).ravel()
        squared = norms - 2 * bank @ q + q @ q
        return float(np.sqrt(max(squared.min(), 0.0) / q.size))

    def image(self, frame: np.ndarray) -> float:
        return self._nearest(self.frames, self.frame_norms, frame)

    def clip(self, frames: np.ndarray) -> float:
        from ..evaluation.frame_format import resample_indices

        return self._nearest(self.clips, self.clip_norms, frames[resample_indices(len(frames), self.num_frames)])


def _row(script: EventScript, case_id: str, position: int, end: str, split: str) -> dict:
    return {
        "id": case_id, "image": f"images/{case_id}.png", "prompt": unpaired_prompt(script), "position": position,
        "frames": script.num_frames, "truth": f"truth/{case_id}.mp4", "split": split, "image_end": end,
        "world": asdict(script), "captions": script.captions(), "agent": script.agent, "object": script.object,
        "room": script.room, "contact": script.contact + 1,
    }


def _stories(split: str, rng: np.random.Generator, frames: int):
    """Endless (script, image end) draws for a split; counterfactual draws come four at a time, one image."""
    ends = ("first", "last", "middle")
    while True:
        if split == "counterfactual":
            obj, room = list(OBJECTS)[rng.integers(len(OBJECTS))], list(ROOMS)[rng.integers(len(ROOMS))]
            x, from_left, end = draw_object_x(rng, HELD_OUT_OBJECT_BANDS), bool(rng.integers(2)), ends[rng.integers(2)]
            yield [(canonical_script(a, obj, room, frames, from_left, True, x), end) for a in AGENTS]
        else:
            pairs = set(HELD_OUT_PAIRS if split == "unseen-pairs" else TRAIN_PAIRS)
            script = sample_script(rng, frames, pairs=pairs, object_bands=HELD_OUT_OBJECT_BANDS)
            yield [(script, ends[rng.integers(3)])]


def check_settings(cases: int, seed: int, frames: int, train_clips: int, min_distance: float) -> None:
    """ValueError naming the option for a setting no benchmark can be built with, before anything is drawn:
    `--cases 1000000000` ran on for days and `--train-clips` that size ran out of memory (the training set's
    frames are held as float32, 0.8 MB a clip); NaN `--min-distance` rejected nothing."""
    from ..frames import check_num_frames
    from ..pipelines.registry import model_spec
    from .pretrained import NAME

    if not 1 <= cases <= MAX_CASES:
        raise ValueError(f"--cases must be within 1..{MAX_CASES} (case ids have five digits), got {cases}")
    if not 1 <= train_clips <= MAX_TRAIN_CLIPS:
        raise ValueError(f"--train-clips must be within 1..{MAX_TRAIN_CLIPS} (held in memory, 0.8 MB a clip), "
                         f"got {train_clips}")
    if not (math.isfinite(min_distance) and min_distance >= 0):
        raise ValueError(f"--min-distance must be a finite distance >= 0, got {min_distance}")
    if seed < 0:
        raise ValueError(f"--seed must be 0 or more, got {seed}")
    check_num_frames(frames)
    limits = model_spec(NAME).size_limits()
    if limits is not None and frames > limits.max_frames:
        raise ValueError(f"--frames {frames} is more than ReasonDiff-mini can make: at most {limits.max_frames}")


def build_synthworld(out_dir: str | Path, split: str, cases: int, seed: int = 0, frames: int = 17, size: int = 64,
                     train_clips: int = TRAIN_CLIPS, min_distance: float = MIN_DISTANCE, log=print) -> dict:
    """Write `OUT/benchmark.jsonl`, `OUT/images/`, `OUT/truth/` and `OUT/report.json`; returns the report.
    Every path is checked before any drawing (ValueError); each true clip is renamed into place once whole, and
    benchmark.jsonl and report.json are placed together, last (`media.write_together`): a failure (OSError)
    leaves the previous benchmark.jsonl and report.json, never a row list cut short."""
    from ..media import check_outputs, save_video, write_together

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    check_settings(cases, seed, frames, train_clips, min_distance)
    out = Path(out_dir)
    first = f"{split}-{seed}-{0:05d}"
    check_outputs(out / "benchmark.jsonl", out / "report.json", out / "images" / f"{first}.png",
                  out / "truth" / f"{first}.mp4")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    nearest = NearestTraining(train_clips, 17, size)
    rng = np.random.default_rng([SPLITS.index(split), seed])
    rows, distances, rejected = [], [], 0
    for group in _stories(split, rng, frames):
        if len(rows) >= cases:
            break
        if rejected > 50 * cases:
            raise RuntimeError(f"{rejected} draws fell within {min_distance} of the training set: lower --min-distance")
        clips = [script.frames(size) for script, _ in group]
        positions = [{"first": 1, "last": frames, "middle": s.contact + 1}[end] for s, end in group]
        image = clips[0][positions[0] - 1]
        d_image, d_clip = nearest.image(image), min(nearest.clip(c) for c in clips)
        if min(d_image, d_clip) < min_distance:
            rejected += 1
            continue
        for (script, end), clip, position in zip(group, clips, positions):
            assert np.array_equal(clip[position - 1], image), "a counterfactual group must share its image"
            case_id = f"{split}-{seed}-{len(rows):05d}"
            Image.fromarray(image).save(out / "images" / f"{case_id}.png")
            write_together({out / "truth" / f"{case_id}.mp4":
                            lambda path, clip=clip: save_video(clip.astype(np.float32) / 255.0, path, fps=8)})
            rows.append({**_row(script, case_id, position, end, split), "nn_image_distance": round(d_image, 3),
                         "nn_clip_distance": round(d_clip, 3)})
            distances.append((d_image, d_clip))
        log(f"{split}: {min(len(rows), cases)} of {cases} cases")
    rows = rows[:cases]
    d = np.array(distances[:cases])
    report = {
        "split": split, "cases": len(rows), "seed": seed, "frames": frames, "size": size,
        "training_set": {"clips": train_clips, "seed": 0, "object_bands": "world.TRAIN_OBJECT_BANDS"},
        "min_distance": min_distance, "rejected_draws": rejected,
        "nn_image_distance": {"min": float(d[:, 0].min()), "mean": float(d[:, 0].mean())},
        "nn_clip_distance": {"min": float(d[:, 1].min()), "mean": float(d[:, 1].mean())},
    }
    texts = {out / "benchmark.jsonl": "".join(json.dumps(row) + "\n" for row in rows),
             out / "report.json": json.dumps(report, indent=2) + "\n"}
    write_together({path: (lambda partial, text=text: partial.write_text(text)) for path, text in texts.items()})
    return report
