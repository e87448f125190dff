"""`eval score`: score videos made by any model against a benchmark, without generating anything.

A researcher puts a model on a benchmark by writing `VDIR/<case id>.mp4` for every case (any size: frames are
resized to the benchmark's) and running `reasondiff eval score --benchmark B --videos VDIR --out ODIR`.
`eval run` scores its own videos through the same `case_sample`, so both give the same number for the same
frames.

Layout of ODIR (the rows have `eval run`'s shape, so `eval report` reads score folders and run folders alike):

    score.json      benchmark, videos folder, method label and metric names (a rerun with others is refused)
    results.jsonl   one row per case, appended and fsynced as it is scored (a rerun resumes after them)
    summary.json    {"<metric>": {"mean": m, "ci95": [lo, hi], "n": n, "clusters": k}}, bootstrap over the
                    cases' images (rows record each case's `image_key`; cases sharing an image move together)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from ..data.jsonl import append_rows, read_jsonl, write_atomically
from .manifest import EvalCase
from .metrics import Sample, measured_with
from .stats import mean_ci
from .frame_format import count_frames, read_video

RESULTS = "results.jsonl"


def case_sample(case: EvalCase, frames: np.ndarray, image: PIL.Image.Image, fps: float) -> Sample:
    """What a metric may read about one video of `case`: the true position follows the video's frame count."""
    position = case.ground_truth_narration(frames.shape[0]).position if case.captions and case.position else None
    return Sample(frames=frames, fps=fps, image=image, captions=case.captions, position=position,
                  agent=case.extra.get("agent"), truth=case.extra)


def image_key(image: PIL.Image.Image) -> str:
    """The condition image's identity for the clustered bootstrap (`stats`): a hash of its RGB pixels and size, so
    cases that share an image (even from separate files) share a key."""
    import hashlib

    rgb = image.convert("RGB")
    return hashlib.sha1(f"{rgb.width}x{rgb.height}:".encode() + rgb.tobytes()).hexdigest()[:16]


def fit_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Frames resized to the benchmark's size (area filter when shrinking), unchanged when they already fit."""
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([np.asarray(PIL.Image.fromarray(f).resize((width, height), PIL.Image.Resampling.BOX
                                                              if f.shape[0] > height else PIL.Image.Resampling.BICUBIC))
                     for f in frames])


def settings_changes(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """`key: old -> new` for every setting a folder was made with that differs now (run.json, score.json)."""
    return [f"{k}: {stored.get(k)!r} -> {v!r}" for k, v in current.items() if stored.get(k) != v]


def _check_folder(out: Path, settings: dict[str, Any]) -> None:
    path = out / "score.json"
    if path.exists():
        changed = settings_changes(json.loads(path.read_text()), settings)
        if changed:
            raise ValueError(f"{out} holds scores made with other settings ({'; '.join(changed)}); "
                             "use the same settings to resume, or another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(settings, indent=2) + "\n")


def score_videos(cases: Sequence[EvalCase], videos: str | Path, out_dir: str | Path, metrics: Sequence[Any], *,
                 label: str = "method", fps: float = 8, log: Callable[[str], None] = lambda message: None) -> Path:
    """Score `videos/<id>.mp4` of every case with `metrics`; returns the summary.json path (see module docstring)."""
    videos, out = Path(videos), Path(out_dir)
    missing = [case.id for case in cases if not (videos / f"{case.id}.mp4").is_file()]
    if missing:
        raise ValueError(f"{len(missing)} of {len(cases)} videos are missing from {videos} (first: {missing[0]}.mp4)")
    check_frame_counts(cases, videos)
    _check_folder(out, {"videos": str(videos.resolve()), "label": label, "fps": fps,
                        "metrics": [m.name for m in metrics], "measured_with": measured_with(metrics)})
    path = out / RESULTS
    rows = read_jsonl(path, repair=True)  # a torn last row (a kill mid-write) is cut and its case scored again
    done = {row["case_id"] for row in rows}
    todo = [case for case in cases if case.id not in done]
    for number, case in enumerate(todo, start=1):
        image = PIL.Image.open(case.image).convert("RGB")
        frames = fit_frames(read_video(videos / f"{case.id}.mp4"), image.height, image.width)
        scores = {m.name: finite_score(m.score(case_sample(case, frames, image, fps)), m.name) for m in metrics}
        row = {"case_id": case.id, "mode": label, "method": label, "video": str(videos / f"{case.id}.mp4"),
               "image_key": image_key(image), "metrics": scores}
        append_rows(path, [row])
        rows.append(row)
        log(f"[{number}/{len(todo)}] {case.id}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()
                                                              if v is not None))
    keys = [row.get("image_key") for row in rows]  # cases sharing an image are resampled together
    clusters = keys if all(keys) else None
    summary = {m.name: mean_ci([row["metrics"].get(m.name) for row in rows], clusters=clusters) for m in metrics}
    write_atomically(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return out / "summary.json"


def check_frame_counts(cases: Sequence[EvalCase], videos: Path) -> None:
    """ValueError naming the first video that cannot be read, or whose frame count is not the `frames` its case
    gives, before anything is scored: a 9-frame video of a 17-frame case was scored against a true clip
    stretched to fit, and an empty file stopped the run midway with ffmpeg's log."""
    for case in cases:
        path = videos / f"{case.id}.mp4"
        count, expected = count_frames(path), case.extra.get("frames")
        if expected is not None and count != expected:
            raise ValueError(f"{path} has {count} frames, but the benchmark's case {case.id} has {expected}: "
                             f"score videos made with --frames {expected}")


def finite_score(value, name):
    if value is None:
        return None
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"metric {name} returned {value}")
    return value
