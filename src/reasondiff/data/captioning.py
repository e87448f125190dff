"""`reasondiff data caption`: one caption per sampled frame, batched, resumable, shardable across processes.

Any object with `caption(frames: list[PIL.Image.Image]) -> list[str]` (one caption per frame) is a captioner;
`reasondiff.narrator`'s VisionNarrator backends have this `caption` role (the paper used
LLaMA-3.2-11B-Vision-Instruct). `resolve_captioner` turns a CLI spec into one:

    py:package.module:Name     an object, or a class/function called with no arguments, that has `caption`
    anything else              handed to reasondiff.narrator (e.g. openai:gpt-4o, transformers:/path/to/vlm)

On disk, next to the sampled dataset (or under --output):
    captions.parts/rank-00000-of-00002.jsonl   what each process captioned: {"clip_id", "captions"}
    captions.jsonl                             the merge, one row per clip, in manifest order

Sharding: clip i of the manifest belongs to process i % world_size, a rule that does not depend on what is
already done, so processes never need to agree on a to-do list. Each process appends a clip's row once all
its frames are captioned; after all processes finish (accelerate's wait_for_everyone) the main process merges
every part file (of this and earlier runs, any world size) by clip id, so nothing is lost or duplicated and
a killed run resumes where it stopped.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from PIL import Image
from tqdm.auto import tqdm

from .jsonl import append_rows, read_jsonl, write_atomically
from .sampling import SampledClips, checkpoint

log = logging.getLogger(__name__)

PARTS_DIR = "captions.parts"
CAPTIONS_FILE = "captions.jsonl"


@runtime_checkable
class Captioner(Protocol):
    def caption(self, frames: list[Image.Image]) -> list[str]:
        """One caption per frame, in order."""
        ...


def resolve_captioner(spec: str) -> Captioner:
    """A captioner from a CLI spec (see the module docstring)."""
    if spec.startswith("py:"):
        target = spec[3:]
        module_name, _, attr = target.partition(":")
        if not module_name or not attr:
            raise ValueError(f"captioner spec {spec!r} must look like py:package.module:Name")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"cannot load captioner {spec!r}: {err}") from err
        if not hasattr(obj, "caption") or isinstance(obj, type):
            try:
                obj = obj()
            except TypeError as err:
                raise ValueError(f"cannot build captioner {spec!r} without arguments: {err}") from err
    else:
        try:
            narrator = importlib.import_module("reasondiff.narrator")
            factory = narrator.VisionNarrator
        except (ImportError, AttributeError):
            raise ValueError(
                f"narrator backend {spec!r} needs reasondiff.narrator.VisionNarrator, which this installation lacks; "
                "use a py:module:Name captioner instead"
            ) from None
        obj = factory.from_spec(spec) if hasattr(factory, "from_spec") else factory(spec)
    if not callable(getattr(obj, "caption", None)):
        raise ValueError(f"{spec!r} gives a {type(obj).__name__}, which has no caption(frames) method")
    return obj


def _done_ids(root: Path) -> set[str]:
    done = {row["clip_id"] for row in read_jsonl(root / CAPTIONS_FILE)}
    for part in sorted((root / PARTS_DIR).glob("*.jsonl")):  # a torn last row: that clip is captioned again
        done.update(row["clip_id"] for row in read_jsonl(part, repair=True))
    return done


def caption_clips(
    dataset: str | Path,
    captioner: Captioner,
    *,
    output: str | Path | None = None,
    batch_size: int = 16,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
) -> int:
    """Caption this process's share of the clips not yet captioned; returns how many clips it captioned."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    clips = SampledClips(dataset)
    root = Path(output) if output is not None else clips.root
    (root / PARTS_DIR).mkdir(parents=True, exist_ok=True)
    part = root / PARTS_DIR / f"rank-{rank:05d}-of-{world_size:05d}.jsonl"
    done = _done_ids(root)
    mine = [row for i, row in enumerate(clips.rows) if i % world_size == rank and row["clip_id"] not in done]

    queue: list[tuple[str, int, Image.Image]] = []  # (clip id, frame index, frame)
    results: dict[str, list[str | None]] = {}
    order: list[str] = []
    finished = 0

    def run_batch(batch):
        nonlocal finished
        captions = captioner.caption([frame for _, _, frame in batch])
        if not isinstance(captions, Sequence) or len(captions) != len(batch):
            got = len(captions) if isinstance(captions, Sequence) else type(captions).__name__
            raise ValueError(f"the captioner returned {got} captions for {len(batch)} frames")
        for (clip_id, index, _), text in zip(batch, captions):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"the captioner returned an empty caption for frame {index + 1} of clip {clip_id}")
            results[clip_id][index] = text.strip()
        complete = []
        while order and all(c is not None for c in results[order[0]]):
            clip_id = order.pop(0)
            complete.append({"clip_id": clip_id, "captions": results.pop(clip_id)})
        append_rows(part, complete)
        finished += len(complete)
        bar.update(len(complete))
        checkpoint()

    with tqdm(total=len(mine), desc=f"captioning (process {rank + 1}/{world_size})", unit="clip",
              disable=not progress) as bar:
        for row in mine:
            frames = clips.frames(row["clip_id"])
            results[row["clip_id"]] = [None] * len(frames)
            order.append(row["clip_id"])
            for index, pixels in enumerate(frames):
                queue.append((row["clip_id"], index, Image.fromarray(pixels)))
                if len(queue) == batch_size:
                    run_batch(queue)
                    queue = []
        if queue:
            run_batch(queue)
    return finished


def merge_captions(dataset: str | Path, output: str | Path | None = None) -> tuple[int, list[str]]:
    """Merge every part file into captions.jsonl (manifest order, one row per clip); returns (rows, missing ids)."""
    clips = SampledClips(dataset)
    root = Path(output) if output is not None else clips.root
    found: dict[str, list[str]] = {row["clip_id"]: row["captions"] for row in read_jsonl(root / CAPTIONS_FILE)}
    for part in sorted((root / PARTS_DIR).glob("*.jsonl")):
        for row in read_jsonl(part):
            found.setdefault(row["clip_id"], row["captions"])
    rows, missing = [], []
    for row in clips.rows:
        if row["clip_id"] in found:
            rows.append({"clip_id": row["clip_id"], "captions": found[row["clip_id"]]})
        else:
            missing.append(row["clip_id"])
    write_atomically(root / CAPTIONS_FILE, "".join(json.dumps(r) + "\n" for r in rows))
    return len(rows), missing


def run_captioning(
    dataset: str | Path,
    captioner: Captioner,
    *,
    output: str | Path | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> tuple[int, list[str]] | None:
    """Caption in every process that accelerate launched (or this one alone) and merge on the main process.

    Returns (rows, missing clip ids) on the main process, None on the others.
    """
    import os

    import torch
    from accelerate import PartialState

    # Without cpu=True, accelerate on a machine without GPUs ignores a torchrun launch (every process would call
    # itself rank 0 of 1 and caption everything); with it, the processes join a gloo group.
    state = PartialState(cpu=True) if not torch.cuda.is_available() else PartialState()
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if state.num_processes != launched:
        raise RuntimeError(f"launched as {launched} processes but accelerate sees {state.num_processes}")
    caption_clips(dataset, captioner, output=output, batch_size=batch_size, rank=state.process_index,
                  world_size=state.num_processes, progress=progress and state.is_local_main_process)
    state.wait_for_everyone()
    result = merge_captions(dataset, output) if state.is_main_process else None
    state.wait_for_everyone()
    return result


def read_captions(root: str | Path) -> dict[str, list[str]]:
    """clip id -> per-frame captions, from a captions.jsonl file or the folder that holds it."""
    path = Path(root)
    if path.is_dir():
        path = path / CAPTIONS_FILE
    if not path.is_file():
        raise ValueError(f"no captions at {path}: run `reasondiff data caption` first")
    rows = read_jsonl(path)
    for line, row in enumerate(rows, start=1):
        captions = row.get("captions")
        if "clip_id" not in row or not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
            raise ValueError(f"{path}: row {line} needs 'clip_id' and 'captions' (a list of strings), as "
                             "`reasondiff data caption` writes")
    return {row["clip_id"]: row["captions"] for row in rows}
