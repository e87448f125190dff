"""Video decoding and clip sampling on a fixed time grid (PyAV).

Frames are chosen by presentation time (pts x time_base), never by frame index, so any frame rate works,
variable ones included: the frame sampled for grid time t is the frame *on screen* at t, i.e. the last
frame whose timestamp is <= t. Times are measured from the first frame's timestamp and computed with
exact fractions (0.2 s is 1/5, not 0.2000000000000000111), so a frame that sits exactly on the grid is
always the one taken.

Rotation: phones store portrait video as landscape pixels plus a display matrix. We read the angle
PyAV derives from it (`VideoFrame.rotation`, counter-clockwise degrees) and turn the pixels upright
before resizing, as ffmpeg's player does (older PyAV: the stream's legacy `rotate` tag).
Flips in the display matrix and non-square sample aspect ratios are not applied.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts", ".ogv"}
)


class VideoError(Exception):
    """A video we cannot use (unreadable, corrupt, too short); the message says which and why."""


@dataclass
class Clip:
    """`frames` uint8 `[T, H, W, 3]`; `start` and `timestamps` in seconds from the video's first frame."""

    index: int
    start: float
    grid: list[float]
    timestamps: list[float]
    frames: np.ndarray


@dataclass
class VideoClips:
    """What `read_clips` found in one video."""

    clips: list[Clip]
    fps: float
    duration: float  # seconds from the first to the last frame timestamp, plus one frame
    num_source_frames: int
    rotation: int
    source_size: tuple[int, int]  # (width, height) as displayed, i.e. after rotation
    notes: list[str] = field(default_factory=list)


MAX_SIDE = 4096  # a 33-frame clip that size is 1.6 GB of uint8 frames; past ~16k ffmpeg's scaler fails every video


def parse_size(text: str | int) -> tuple[int, int]:
    """'512' -> (512, 512); '832x480' -> (832, 480) as width x height; ValueError past MAX_SIDE (a size of
    20000 had every good video skipped as "cannot decode", and the run ended with no clip)."""
    parts = str(text).lower().replace("*", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"size must be PX or WIDTHxHEIGHT (e.g. 512 or 832x480), got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise ValueError(f"size must be PX or WIDTHxHEIGHT with positive numbers, got {text!r}")
    if max(values) > MAX_SIDE:
        raise ValueError(f"--size {text} is beyond {MAX_SIDE} pixels a side (the frames are held in memory)")
    return values[0], values[1]


def to_fraction(seconds: float | str | Fraction) -> Fraction:
    """0.2 -> 1/5 (the decimal the user meant, not the binary float)."""
    return Fraction(str(seconds)).limit_denominator(1_000_000) if not isinstance(seconds, Fraction) else seconds


def clip_starts(last: Fraction, num_frames: int, interval: Fraction, clips_per_video: int) -> list[Fraction]:
    """Start times of up to `clips_per_video` non-overlapping clips spread over a video whose last frame is at
    `last`; every start is a multiple of `interval`, so all sampled times lie on one grid from the first frame."""
    span = (num_frames - 1) * interval
    available = last - span
    if available < 0:
        return []
    fit = int(available // (span + interval)) + 1  # clips that fit without sharing a grid point
    count = max(1, min(clips_per_video, fit))
    if count == 1:
        return [Fraction(0)]
    slots = int(available // interval)  # grid points a start may take: 0 .. slots
    return [Fraction(math.floor(Fraction(k * slots, count - 1))) * interval for k in range(count)]


def _rotation(frame, stream) -> int:
    angle = getattr(frame, "rotation", None)
    if angle is None:  # PyAV without VideoFrame.rotation: the legacy clockwise tag
        try:
            angle = -float(stream.metadata.get("rotate", 0))
        except ValueError:
            angle = 0
    return round(float(angle) / 90.0) % 4 * 90


def frame_to_array(frame, rotation: int, size: tuple[int, int]) -> np.ndarray:
    """Decode `frame` upright, resized to cover `size` (width, height) and center-cropped to it."""
    width, height = size
    turns = rotation // 90
    shown_w, shown_h = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
    scale = max(width / shown_w, height / shown_h)
    scaled_w, scaled_h = max(width, round(shown_w * scale)), max(height, round(shown_h * scale))
    coded_w, coded_h = (scaled_h, scaled_w) if turns % 2 else (scaled_w, scaled_h)
    interpolation = "AREA" if scale < 1 else "BICUBIC"
    pixels = frame.reformat(width=coded_w, height=coded_h, format="rgb24", interpolation=interpolation).to_ndarray()
    if turns:
        pixels = np.rot90(pixels, k=turns)  # counter-clockwise, as the display matrix says
    top, left = (scaled_h - height) // 2, (scaled_w - width) // 2
    return np.ascontiguousarray(pixels[top : top + height, left : left + width])


def _open(source: str | Path):
    import av

    try:
        return av.open(str(source), mode="r", timeout=30.0)
    except Exception as err:  # av.error.* for bad data, OSError for missing files
        raise VideoError(f"cannot open {source}: {err}") from err


def read_clips(
    source: str | Path,
    *,
    num_frames: int,
    interval: float | Fraction = Fraction(1, 5),
    size: tuple[int, int] = (512, 512),
    clips_per_video: int = 1,
) -> VideoClips:
    """Sample up to `clips_per_video` clips of `num_frames` frames, `interval` seconds apart, from one video.

    Raises `VideoError` (never anything else for a bad file) when the video cannot be read completely or is
    too short for one clip.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    step = to_fraction(interval)
    if step <= 0:
        raise ValueError(f"interval must be positive, got {interval}")
    try:
        return _read_clips(source, num_frames, step, size, clips_per_video)
    except VideoError:
        raise
    except Exception as err:  # corrupt data surfaces as many exception types; none may escape as a crash
        raise VideoError(f"cannot decode {source}: {type(err).__name__}: {err}") from err


def _timestamp(item) -> int | None:
    return item.pts if item.pts is not None else item.dts  # some containers (AVI, raw streams) only set dts


@dataclass
class _Plan:
    """Where the clips lie for a video whose first shown frame has timestamp `origin`."""

    origin: int
    last: Fraction  # the last frame's time, in seconds from the origin
    grids: list[list[Fraction]]  # each clip's requested times
    targets: list[Fraction]  # every requested time once, in order


@dataclass
class _Timeline:
    """Pass 1: the timeline from the demuxer alone (cheap: no decoding), to place the clips."""

    source: str | Path
    time_base: Fraction
    stamps: list[int]  # the shown packets' timestamps, sorted
    average_rate: Fraction | None

    def plan(self, origin: int, num_frames: int, step: Fraction, clips_per_video: int) -> _Plan:
        """Clip grids from `origin` (raises VideoError if the video is too short for one clip)."""
        last = (self.stamps[-1] - origin) * self.time_base
        starts = clip_starts(last, num_frames, step, clips_per_video)
        if not starts:
            need = (num_frames - 1) * step
            shown_frames = sum(1 for t in self.stamps if t >= origin)
            raise VideoError(
                f"{self.source} is too short: {shown_frames} frames, the last at {float(last):.2f} s; {num_frames} "
                f"frames at {float(step):g} s intervals need a frame at {float(need):.2f} s or later"
            )
        grids = [[start + i * step for i in range(num_frames)] for start in starts]
        return _Plan(origin, last, grids, sorted({t for grid in grids for t in grid}))


def _demux(source) -> _Timeline:
    """Read the packets' timestamps. Packets an edit list discards (a cut made with `-c copy` keeps the frames
    before the cut for the decoder) are not shown; fewer packets than the container indexes means truncation."""
    with _open(source) as container:
        if not container.streams.video:
            raise VideoError(f"{source} has no video stream")
        stream = container.streams.video[0]
        time_base = stream.time_base
        if time_base is None:
            raise VideoError(f"{source}: the video stream has no time base")
        packets = [(_timestamp(p), getattr(p, "is_discard", False)) for p in container.demux(stream) if p.size]
        stamps = sorted({pts for pts, discard in packets if pts is not None and not discard})
        average_rate = stream.average_rate
        indexed = stream.frames  # the container's own frame count (0 when it does not say)
    if not stamps:
        raise VideoError(f"{source} holds no video frames")
    if indexed and len(packets) < indexed:
        raise VideoError(f"{source} is truncated or corrupt: its index lists {indexed} frames, only {len(packets)} "
                         f"could be read (up to {float((stamps[-1] - stamps[0]) * time_base):.3f} s)")
    return _Timeline(source, time_base, stamps, average_rate)


class _FramePicker:
    """Pass 2: frames seen in presentation order; the frame for grid time t is the last one with timestamp <= t.
    Each picked frame is converted to pixels once, however many grid times it covers."""

    def __init__(self, timeline: _Timeline, request: tuple[int, Fraction, int], size: tuple[int, int]):
        self.timeline, self.request, self.size = timeline, request, size
        self.plan = timeline.plan(timeline.stamps[0], *request)
        self.chosen: dict[Fraction, Fraction] = {}  # grid time -> timestamp of the frame on screen then
        self.arrays: dict[Fraction, np.ndarray] = {}  # frame timestamp -> its pixels
        self.decoded = 0
        self.rotation = 0
        self.shown = (0, 0)
        self.previous = None  # (time, frame)
        self.next_target = 0

    @property
    def complete(self) -> bool:
        return self.next_target == len(self.plan.targets)

    def see(self, frame, stream) -> None:
        """Take `frame` into account: every grid time before it is covered by the frame before it."""
        pts = _timestamp(frame)
        if pts is None:
            return
        time_base, targets = self.timeline.time_base, self.plan.targets
        if getattr(frame, "is_corrupt", False):
            when = float((pts - self.plan.origin) * time_base)
            raise VideoError(f"{self.timeline.source}: corrupt frame at {when:.3f} s")
        if self.decoded == 0:
            self._first_frame(frame, stream, pts)
            targets = self.plan.targets
        self.decoded += 1
        when = (pts - self.plan.origin) * time_base
        if self.previous is not None and when <= self.previous[0]:
            return  # a repeated or out-of-order timestamp: the earlier frame stays on screen
        while self.next_target < len(targets) and targets[self.next_target] < when:
            if self.previous is None:
                at = float(targets[self.next_target])
                raise VideoError(f"{self.timeline.source}: no frame on screen at {at:.3f} s")
            self._take(self.previous)
        self.previous = (when, frame)

    def _first_frame(self, frame, stream, pts: int) -> None:
        self.rotation = _rotation(frame, stream)
        self.shown = (frame.height, frame.width) if self.rotation % 180 else (frame.width, frame.height)
        if pts != self.plan.origin:  # the decoder dropped (or added) leading frames: time starts at the first shown
            self.plan = self.timeline.plan(pts, *self.request)

    def _take(self, candidate) -> None:
        when, frame = candidate
        self.chosen[self.plan.targets[self.next_target]] = when
        if when not in self.arrays:
            self.arrays[when] = frame_to_array(frame, self.rotation, self.size)
        self.next_target += 1

    def finish(self) -> None:
        """After the decoder's last frame: it stays on screen up to the container's last frame time; grid times
        still uncovered mean decoding stopped short of what the container indexes."""
        targets, last = self.plan.targets, self.plan.last
        while self.next_target < len(targets) and self.previous is not None and targets[self.next_target] <= last:
            if self.previous[0] < last:  # decoding stopped before the container's last frame
                break
            self._take(self.previous)
        if not self.complete:
            reached = float(self.previous[0]) if self.previous else 0.0
            raise VideoError(
                f"{self.timeline.source} is truncated or corrupt: decoding stopped at {reached:.3f} s but the "
                f"container indexes frames up to {float(last):.3f} s"
            )

    def video_clips(self) -> VideoClips:
        """The picked frames as clips, with the video's rate, duration and shown size."""
        stamps, plan = self.timeline.stamps, self.plan
        frame_step = plan.last / (len(stamps) - 1) if len(stamps) > 1 else Fraction(0)
        rate = self.timeline.average_rate
        fps = float(rate) if rate else (float(1 / frame_step) if frame_step else 0.0)
        clips = [self._clip(index, grid) for index, grid in enumerate(plan.grids)]
        return VideoClips(clips=clips, fps=round(fps, 4), duration=round(float(plan.last + frame_step), 4),
                          num_source_frames=sum(1 for t in stamps if t >= plan.origin), rotation=self.rotation,
                          source_size=self.shown)

    def _clip(self, index: int, grid: list[Fraction]) -> Clip:
        whens = [self.chosen[t] for t in grid]
        return Clip(index=index, start=round(float(grid[0]), 6), grid=[round(float(t), 6) for t in grid],
                    timestamps=[round(float(when), 6) for when in whens],
                    frames=np.stack([self.arrays[when] for when in whens]))


def _read_clips(source, num_frames: int, step: Fraction, size, clips_per_video: int) -> VideoClips:
    picker = _FramePicker(_demux(source), (num_frames, step, clips_per_video), size)
    with _open(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            picker.see(frame, stream)
            if picker.complete:
                break
        picker.finish()
    return picker.video_clips()
