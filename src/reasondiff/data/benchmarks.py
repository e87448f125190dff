"""Evaluation sets (paper §4.1, Appendix B.2) built from a sampled (and captioned) dataset.

Unpaired (the paper's self-built ActivityNet set: 500 videos, one 16-frame clip each): the condition image is
the first or the last frame of the clip, chosen so that exactly half the clips use each end (a seeded
shuffle), and the prompt is the caption of the *opposite* end. The model is not told where the image belongs;
the ground truth is kept for scoring: the true position, all per-frame captions (CLIP-Text score compares
generated frame k with the caption of real frame k) and a pointer to the real frames.

Paired (MSR-VTT validation style): the first frame as the image and the clip's own caption as the prompt
(the dataset's caption, e.g. the CSV `name` column, or one frame's generated caption).

On disk (`out_dir`):
    benchmark.jsonl         one row per item (fields below)
    images/<clip_id>.png    the condition image
    info.json               kind, seed, counts and the source dataset
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image

from .captioning import read_captions
from .jsonl import read_jsonl, write_atomically
from .sampling import SampledClips

PROMPT_SOURCES = ("source", "first", "middle", "last")


def _choose(rows: list[dict], num: int | None, seed: int) -> list[dict]:
    if num is None or num >= len(rows):
        return list(rows)
    if num < 1:
        raise ValueError(f"--num must be at least 1, got {num}")
    keep = set(random.Random(f"{seed}:subset").sample(range(len(rows)), num))
    return [row for i, row in enumerate(rows) if i in keep]


def _write(out_dir: Path, clips: SampledClips, items: list[tuple[dict, dict, int]], info: dict) -> Path:
    """items: (benchmark row, manifest row, 0-based frame index of the condition image)."""
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    for row, clip, frame_index in items:
        path = images / f"{clip['clip_id']}.png"
        tmp = path.with_name(path.name + ".tmp.png")
        Image.fromarray(clips.frames(clip["clip_id"])[frame_index]).save(tmp)
        tmp.replace(path)
    lines = "".join(json.dumps(row) + "\n" for row, _, _ in items)
    write_atomically(out_dir / "benchmark.jsonl", lines)
    write_atomically(out_dir / "info.json", json.dumps(info, indent=2) + "\n")
    return out_dir / "benchmark.jsonl"


def _ground_truth(clip: dict, dataset: Path) -> dict:
    return {"clip_id": clip["clip_id"], "video_id": clip["video_id"], "source": clip["source"],
            "start": clip["start"], "timestamps": clip["timestamps"],
            "frames": {"dataset": str(dataset.resolve()), "shard": clip["shard"], "key": clip["clip_id"]}}


def build_unpaired(
    dataset: str | Path,
    out_dir: str | Path,
    *,
    captions: str | Path | None = None,
    num: int | None = None,
    seed: int = 0,
) -> Path:
    """Write the unpaired set. Row fields: id, image, prompt, image_end ('first'|'last'), position (1-based true
    frame of the image), prompt_position (the frame the prompt describes), num_frames, captions (one per real
    frame), plus the ground-truth pointers (clip_id, video_id, source, start, timestamps, frames)."""
    clips = SampledClips(dataset)
    texts = read_captions(captions if captions is not None else clips.root)
    rows = _choose(clips.rows, num, seed)
    if not rows:
        raise ValueError(f"{clips.root} holds no clips")
    missing = [r["clip_id"] for r in rows if r["clip_id"] not in texts]
    if missing:
        raise ValueError(f"{len(missing)} clips have no captions (e.g. {missing[0]}): run `reasondiff data caption`")
    if rows[0]["num_frames"] < 2:
        raise ValueError("an unpaired set needs clips of at least 2 frames")
    ends = ["first"] * ((len(rows) + 1) // 2) + ["last"] * (len(rows) // 2)
    random.Random(f"{seed}:ends").shuffle(ends)
    items = []
    for clip, end in zip(rows, ends):
        per_frame = texts[clip["clip_id"]]
        frames = clip["num_frames"]
        position, prompt_position = (1, frames) if end == "first" else (frames, 1)
        row = {"id": clip["clip_id"], "image": f"images/{clip['clip_id']}.png",
               "prompt": per_frame[prompt_position - 1], "image_end": end, "position": position,
               "prompt_position": prompt_position, "num_frames": frames, "captions": per_frame,
               **_ground_truth(clip, clips.root)}
        items.append((row, clip, position - 1))
    info = {"kind": "unpaired", "seed": seed, "items": len(items), "first": ends.count("first"),
            "last": ends.count("last"), "dataset": str(clips.root.resolve())}
    return _write(Path(out_dir), clips, items, info)


def build_paired(
    dataset: str | Path,
    out_dir: str | Path,
    *,
    captions: str | Path | None = None,
    prompt: str = "source",
    num: int | None = None,
    seed: int = 0,
) -> Path:
    """Write the paired set: the first frame as the image and the clip's caption as the prompt. `prompt`:
    'source' (the dataset's caption, e.g. WebVid/MSR-VTT CSV `name`), or 'first' / 'middle' / 'last' (that
    frame's generated caption). Rows carry per-frame captions when they exist."""
    if prompt not in PROMPT_SOURCES:
        raise ValueError(f"--prompt must be one of {', '.join(PROMPT_SOURCES)}, got {prompt!r}")
    clips = SampledClips(dataset)
    rows = _choose(clips.rows, num, seed)
    if not rows:
        raise ValueError(f"{clips.root} holds no clips")
    caption_path = Path(captions) if captions is not None else clips.root
    has_captions = (caption_path / "captions.jsonl").is_file() if caption_path.is_dir() else caption_path.is_file()
    texts = read_captions(caption_path) if has_captions or prompt != "source" else {}
    items = []
    for clip in rows:
        per_frame = texts.get(clip["clip_id"])
        if prompt == "source":
            text = clip.get("source_caption")
            if not text:
                raise ValueError(
                    f"clip {clip['clip_id']} has no source caption (the CSV 'name' column); sample from a CSV with "
                    "captions or pass --prompt first|middle|last to use a generated frame caption"
                )
        else:
            if per_frame is None:
                raise ValueError(f"clip {clip['clip_id']} has no captions: run `reasondiff data caption`")
            text = per_frame[{"first": 0, "middle": len(per_frame) // 2, "last": -1}[prompt]]
        row = {"id": clip["clip_id"], "image": f"images/{clip['clip_id']}.png", "prompt": text, "position": 1,
               "num_frames": clip["num_frames"], "prompt_source": prompt, **_ground_truth(clip, clips.root)}
        if per_frame is not None:
            row["captions"] = per_frame
        items.append((row, clip, 0))
    info = {"kind": "paired", "seed": seed, "items": len(items), "prompt": prompt,
            "dataset": str(clips.root.resolve())}
    return _write(Path(out_dir), clips, items, info)


def read_benchmark(path: str | Path) -> list[dict]:
    """The rows of a benchmark.jsonl (or of the folder holding it), with `image` made an absolute path."""
    path = Path(path)
    if path.is_dir():
        path = path / "benchmark.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"benchmark not found: {path}")
    rows = read_jsonl(path)
    for row in rows:
        row["image"] = str(path.parent / row["image"])
    return rows
