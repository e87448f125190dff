"""`reasondiff data sample`: a folder of videos (or a WebVid-style CSV) -> a sharded dataset of clips.

On disk (`out_dir`):
    meta.json               format, frames per clip, interval, size, clips per video
    manifest.jsonl          one row per kept clip (see `sample_videos`), in input order
    skipped.jsonl           one row per unusable video: id, source, reason
    clips-00000.safetensors "<clip_id>" -> uint8 [T, H, W, 3]                          (--store raw, exact)
                            "<clip_id>/jpeg" -> uint8 bytes, "<clip_id>/offsets" -> int64 [T+1]  (--store jpeg)

Resuming: all clips of one video go into the same shard; a shard is written atomically (temp file +
os.replace) before its rows are appended to manifest.jsonl, and a video is done once it is in the manifest or
in skipped.jsonl. A killed run therefore leaves at most an orphan shard that the next run overwrites, and
the resumed run produces the same files as an uninterrupted one.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..faults import checkpoint
from .jsonl import append_rows, read_jsonl, write_atomically
from .video import VIDEO_EXTENSIONS, VideoError, read_clips, to_fraction

log = logging.getLogger(__name__)

FORMAT = "reasondiff-clips/1"


def save_shard(path: Path, tensors: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


STORES = ("raw", "jpeg")


def encode_frames(frames: np.ndarray, quality: int) -> dict[str, np.ndarray]:
    """uint8 [T, H, W, 3] -> {"jpeg": every frame's JPEG bytes back to back, "offsets": [T + 1] byte offsets}."""
    import io

    from PIL import Image

    chunks = []
    for pixels in frames:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality, subsampling=0)
        chunks.append(np.frombuffer(buffer.getvalue(), np.uint8))
    offsets = np.cumsum([0] + [len(c) for c in chunks]).astype(np.int64)
    return {"jpeg": np.concatenate(chunks), "offsets": offsets}


def decode_frames(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    import io

    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(data[a:b].tobytes())).convert("RGB"))
                     for a, b in itertools.pairwise(offsets.tolist())])


@dataclass(frozen=True)
class Source:
    video_id: str
    location: str  # a local path or a URL ffmpeg can open
    caption: str | None = None  # the dataset's own caption (WebVid's `name`), if any


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "video"


def _unique_ids(sources: list[Source]) -> list[Source]:
    seen: dict[str, int] = {}
    out = []
    for source in sources:
        if source.video_id in seen:  # same sanitised id: disambiguate by the location, deterministically
            digest = hashlib.sha1(source.location.encode()).hexdigest()[:8]
            source = Source(f"{source.video_id}-{digest}", source.location, source.caption)
        seen[source.video_id] = 1
        out.append(source)
    return out


def list_sources(input_path: str | Path) -> list[Source]:
    """Videos under a folder (recursively, sorted by path), or the rows of a CSV with a `videoid` column, a
    `contentUrl` or `path` column (relative paths are relative to the CSV) and an optional `name` caption."""
    root = Path(input_path)
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        sources = [Source(_safe_id(str(p.relative_to(root).with_suffix(""))), str(p)) for p in files]
        return _unique_ids(sources)
    if not root.is_file():
        raise ValueError(f"input not found: {root}")
    if root.suffix.lower() not in {".csv", ".tsv"}:
        raise ValueError(f"input must be a folder of videos or a .csv file, got {root}")
    with open(root, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t" if root.suffix.lower() == ".tsv" else ",")
        columns = {c.strip().lower(): c for c in reader.fieldnames or []}
        id_col = next((columns[c] for c in ("videoid", "video_id", "id") if c in columns), None)
        loc_col = next((columns[c] for c in ("path", "contenturl", "url", "file") if c in columns), None)
        text_col = next((columns[c] for c in ("name", "caption", "text") if c in columns), None)
        if loc_col is None:
            raise ValueError(f"{root} needs a 'contentUrl' or 'path' column; it has {reader.fieldnames}")
        sources = []
        for line, row in enumerate(reader, start=2):
            location = (row.get(loc_col) or "").strip()
            if not location:
                log.warning("%s line %d: no video path, skipped", root, line)
                continue
            if "://" not in location and not Path(location).is_absolute():
                location = str(root.parent / location)
            raw_id = (row.get(id_col) or "").strip() if id_col else ""
            video_id = _safe_id(raw_id or Path(location).stem)
            caption = (row.get(text_col) or "").strip() or None if text_col else None
            sources.append(Source(video_id, location, caption))
    return _unique_ids(sources)


def _download(url: str, folder: str) -> str:
    """Fetch a URL source to a local file first: decoding reads a video twice, a download happens once."""
    import shutil
    import urllib.request

    suffix = Path(url.split("?")[0]).suffix or ".mp4"
    path = os.path.join(folder, "video" + suffix)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as f:
            shutil.copyfileobj(response, f)
    except Exception as err:  # URLError, HTTPError, timeouts, ...
        raise VideoError(f"cannot download {url}: {err}") from err
    return path


def _sample_one(args) -> tuple[Source, list[dict] | None, dict[str, np.ndarray] | None, str | None]:
    import tempfile

    source, num_frames, interval, size, clips_per_video, store, quality = args
    with tempfile.TemporaryDirectory(prefix="reasondiff-video-") as folder:
        location = source.location
        try:
            if "://" in location:
                location = _download(source.location, folder)
            found = read_clips(location, num_frames=num_frames, interval=interval, size=size,
                               clips_per_video=clips_per_video)
        except VideoError as err:  # messages name the URL, not the temporary copy
            return source, None, None, str(err).replace(location, source.location)
    rows, tensors = [], {}
    for clip in found.clips:
        clip_id = f"{source.video_id}-{clip.index:03d}"
        if store == "jpeg":
            for key, value in encode_frames(clip.frames, quality).items():
                tensors[f"{clip_id}/{key}"] = value
        else:
            tensors[clip_id] = clip.frames
        row = {"clip_id": clip_id, "video_id": source.video_id, "source": source.location, "clip_index": clip.index,
               "num_frames": num_frames, "start": clip.start, "timestamps": clip.timestamps, "grid": clip.grid,
               "fps": found.fps, "duration": found.duration, "rotation": found.rotation,
               "source_size": list(found.source_size)}
        if source.caption is not None:
            row["source_caption"] = source.caption
        rows.append(row)
    return source, rows, tensors, None


@dataclass
class SampleReport:
    kept_clips: int
    kept_videos: int
    skipped: list[dict]
    already_done: int

    def summary(self, out_dir: Path) -> str:
        text = f"{self.kept_clips} clips from {self.kept_videos} videos in {out_dir}"
        if self.already_done:
            text += f" ({self.already_done} videos were already done)"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} videos (reasons in {out_dir / 'skipped.jsonl'})"
        return text


def _check_settings(num_frames: int, interval: float, store: str, quality: int, clips_per_video: int,
                    clips_per_shard: int) -> None:
    """One line naming the flag for a setting no clip could be sampled with, before any video is opened."""
    if num_frames < 1:
        raise ValueError(f"--frames must be at least 1, got {num_frames}")
    if to_fraction(interval) <= 0:
        raise ValueError(f"--interval must be positive, got {interval}")
    if store not in STORES:
        raise ValueError(f"--store must be one of {', '.join(STORES)}, got {store!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"--quality must be within 1..100, got {quality}")
    if clips_per_video < 1 or clips_per_shard < 1:
        raise ValueError("clips per video and clips per shard must be at least 1")


def _open_output(out: Path, settings: dict) -> None:
    """Create `out` with its meta.json, or check that the run being resumed there used the same settings."""
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "meta.json"
    if not meta_path.exists():
        write_atomically(meta_path, json.dumps(settings, indent=2) + "\n")
        return
    meta = json.loads(meta_path.read_text())
    changed = {k: (meta.get(k), v) for k, v in settings.items() if meta.get(k) != v}
    if changed:
        raise ValueError(f"{out} was sampled with other settings ({changed}: was, now); use a new output folder")


@contextmanager
def _sampled(jobs: Iterator[tuple], workers: int) -> Iterator[Iterator]:
    """`_sample_one` over `jobs` in input order: in this process, or in `workers` processes ended on exit."""
    if workers <= 0:
        yield map(_sample_one, jobs)
        return
    import multiprocessing

    # spawn, never fork: a forked worker inherits PyAV's (FFmpeg's) scaler thread pool without its threads, once
    # this process has decoded anything itself, and waits on it forever. Each worker pays a fresh import instead.
    pool = multiprocessing.get_context("spawn").Pool(workers)
    try:
        yield pool.imap(_sample_one, jobs, chunksize=1)  # ordered: the manifest keeps input order
    finally:
        pool.terminate()


class _ManifestWriter:
    """The sampled dataset's manifest and skip list, and the shard being filled (one video's clips never split)."""

    def __init__(self, out: Path, clips_per_shard: int):
        self.out, self.clips_per_shard = out, clips_per_shard
        self.manifest_path, self.skipped_path = out / "manifest.jsonl", out / "skipped.jsonl"
        manifest = read_jsonl(self.manifest_path, repair=True)  # a torn last row: its video is redone
        skipped = read_jsonl(self.skipped_path, repair=True)
        self.done = {row["video_id"] for row in manifest} | {row["video_id"] for row in skipped}
        self.shard = 1 + max((row["shard"] for row in manifest), default=-1)
        self.rows: list[dict] = []
        self.tensors: dict[str, np.ndarray] = {}

    def skip(self, source: Source, reason: str) -> dict:
        log.warning("skipped %s: %s", source.location, reason)
        row = {"video_id": source.video_id, "source": source.location, "reason": reason}
        append_rows(self.skipped_path, [row])
        return row

    def keep(self, rows: list[dict], tensors: dict[str, np.ndarray]) -> None:
        self.rows.extend(rows)
        self.tensors.update(tensors)
        if len(self.rows) >= self.clips_per_shard:
            self.flush()

    def flush(self) -> None:
        """Write the shard, then its manifest rows: a video is done only once its frames are on disk."""
        if not self.rows:
            return
        save_shard(self.out / f"clips-{self.shard:05d}.safetensors", self.tensors)
        checkpoint()  # a kill here leaves an orphan shard: the next run overwrites it
        append_rows(self.manifest_path, [{**row, "shard": self.shard} for row in self.rows])
        self.rows.clear()
        self.tensors.clear()
        self.shard += 1


def sample_videos(
    input_path: str | Path,
    out_dir: str | Path,
    *,
    num_frames: int = 33,
    interval: float = 0.2,
    size: tuple[int, int] = (512, 512),
    clips_per_video: int = 1,
    clips_per_shard: int = 16,
    store: str = "raw",
    quality: int = 95,
    workers: int = 0,
    limit: int | None = None,
    progress: bool = True,
) -> SampleReport:
    """Sample clips from every video of `input_path` into `out_dir` (created or resumed).

    A manifest row: clip_id, video_id, source, clip_index, num_frames, start (s), grid (the requested times),
    timestamps (the times of the frames taken, each the frame on screen at its grid time), fps, duration,
    rotation, source_size [w, h] as displayed, and source_caption when the CSV has one.
    """
    _check_settings(num_frames, interval, store, quality, clips_per_video, clips_per_shard)
    sources = list_sources(input_path)[:limit]
    if not sources:
        raise ValueError(f"no videos found in {input_path} (extensions: {', '.join(sorted(VIDEO_EXTENSIONS))})")
    out = Path(out_dir)
    settings = {"format": FORMAT, "num_frames": num_frames, "interval": str(to_fraction(interval)),
                "width": size[0], "height": size[1], "clips_per_video": clips_per_video, "store": store}
    if store == "jpeg":
        settings["quality"] = quality
    _open_output(out, settings)
    writer = _ManifestWriter(out, clips_per_shard)
    todo = [s for s in sources if s.video_id not in writer.done]
    report = SampleReport(0, 0, [], len(sources) - len(todo))
    jobs = ((s, num_frames, interval, size, clips_per_video, store, quality) for s in todo)
    with _sampled(jobs, workers) as results:
        for source, rows, tensors, error in tqdm(results, total=len(todo), desc="sampling videos", unit="video",
                                                 disable=not progress):
            if error is not None:
                report.skipped.append(writer.skip(source, error))
            else:
                writer.keep(rows, tensors)
                report.kept_clips += len(rows)
                report.kept_videos += 1
            checkpoint()
        writer.flush()
    if writer.shard == 0:  # not one clip in the dataset, from this run or an earlier one
        raise ValueError(_nothing_sampled(input_path, writer.skipped_path))
    return report


def _nothing_sampled(input_path: str | Path, skipped_path: Path) -> str:
    """Why a run ended with an empty dataset: every video was skipped (exit 0 with "0 clips" read as success)."""
    skipped = read_jsonl(skipped_path)
    first = f" (first: {skipped[0]['reason']})" if skipped else ""
    return (f"no clip could be sampled from {input_path}: all {len(skipped)} videos were skipped as unreadable, "
            f"corrupt or too short{first}; the list is in {skipped_path}")


class SampledClips:
    """Read access to a sampled dataset: its manifest rows and each clip's frames."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if not meta_path.is_file():
            raise ValueError(f"{self.root} is not a sampled dataset (no meta.json): run `reasondiff data sample` first")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT:
            raise ValueError(f"{self.root} holds format {self.meta.get('format')!r}, expected {FORMAT!r}")
        self.rows = read_jsonl(self.root / "manifest.jsonl")
        self.by_id = {row["clip_id"]: row for row in self.rows}
        self._handles: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def frames(self, clip_id: str) -> np.ndarray:
        from safetensors import safe_open

        shard = self.by_id[clip_id]["shard"]
        if shard not in self._handles:
            self._handles[shard] = safe_open(str(self.root / f"clips-{shard:05d}.safetensors"), framework="np")
        handle = self._handles[shard]
        if self.meta.get("store", "raw") == "jpeg":
            return decode_frames(handle.get_tensor(f"{clip_id}/jpeg"), handle.get_tensor(f"{clip_id}/offsets"))
        return handle.get_tensor(clip_id)

    def __iter__(self) -> Iterator[tuple[dict, np.ndarray]]:
        for row in self.rows:
            yield row, self.frames(row["clip_id"])
