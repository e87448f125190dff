"""Reading user images and writing videos, with errors that name the file and the problem.

A bottom layer: it imports nothing of ReasonDiff but `faults`, so `narrator` and everything above can use it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
from diffusers.utils import export_to_gif, export_to_video

VIDEO_SUFFIXES = (".mp4", ".gif")


def load_image(path: str | Path) -> PIL.Image.Image:
    """Open `path` as an RGB image, or raise ValueError naming the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"image file not found: {path}")
    try:
        with PIL.Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except PIL.Image.DecompressionBombError as err:  # not an OSError: it would escape as a traceback
        raise ValueError(f"{path} is too large to open safely ({err})") from None
    except (PIL.UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path} is not a readable image ({err})") from err


def check_writable(path: str | Path) -> Path:
    """Fail before any work, not after it, when `path` cannot be written: a folder in its place, a file where a
    parent folder should be, or a folder this process may not write in (tried with a real temporary file, which
    also catches read-only disks and root's way past permission bits)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot write {path}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise ValueError(f"cannot write {path}: {existing} is not writable ({err.strerror or err})") from None
    return path


def check_video_path(path: str | Path) -> Path:
    """Fail before generating, not after, when the output path cannot hold a video."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"output {path} must end in one of {', '.join(VIDEO_SUFFIXES)}")
    return check_writable(path)


def partial_path(path: Path) -> Path:
    """Where `path` is written before it is renamed into place: hidden, beside it, same suffix (ffmpeg and PIL
    pick the format from it), and the same name every run, so a killed run's leftover is overwritten."""
    return path.with_name(f".partial-{path.name}")


def write_together(writers: dict[Path, Callable[[Path], object]]) -> None:
    """Write several files that belong together (a video, its script, its contact sheet) so that a reader never
    sees a mix of two runs: each writer fills a temporary file; only when all are written are the old files
    removed and the new ones renamed into place. A kill before that leaves the old set; during it, some files
    are missing, never stale."""
    from .faults import checkpoint

    try:
        for final, write in writers.items():
            final.parent.mkdir(parents=True, exist_ok=True)
            write(partial_path(final))
            checkpoint()
    except BaseException:  # a full disk, a failed encoder: the old files stay, the half-written ones go
        for final in writers:
            partial_path(final).unlink(missing_ok=True)
        raise
    for final in writers:
        final.unlink(missing_ok=True)
    checkpoint()
    for final in writers:
        os.replace(partial_path(final), final)
        checkpoint()


def save_video(frames: np.ndarray, path: str | Path, fps: int = 8) -> Path:
    """Write frames `[F, H, W, 3]` with values in [0, 1] as .mp4 (imageio-ffmpeg) or .gif."""
    path = check_video_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        images = [PIL.Image.fromarray((np.clip(f, 0, 1) * 255).round().astype(np.uint8)) for f in frames]
        export_to_gif(images, str(path), fps=fps)
    else:
        # macro_block_size=1: keep the generated size (e.g. 64x64) instead of letting ffmpeg rescale it.
        export_to_video(list(frames), str(path), fps=fps, macro_block_size=1)
    return path


def save_contact_sheet(frames: np.ndarray, path: str | Path, anchor: int | None = None, count: int = 6) -> Path:
    """Key frames `[F, H, W, 3]` in [0, 1] side by side as a PNG, each labelled with its 1-based frame number;
    the condition image's frame (`anchor`) is always included and framed in yellow."""
    path = Path(path)
    num = len(frames)
    picks = sorted(set(np.linspace(0, num - 1, min(count, num)).round().astype(int).tolist()) | (
        {anchor - 1} if anchor else set()))
    height, width = frames.shape[1:3]
    label = 14
    sheet = PIL.Image.new("RGB", (len(picks) * (width + 4), height + label + 4), (20, 20, 20))
    draw = PIL.ImageDraw.Draw(sheet)
    for i, t in enumerate(picks):
        x = i * (width + 4) + 2
        tile = PIL.Image.fromarray((np.clip(frames[t], 0, 1) * 255).round().astype(np.uint8))
        sheet.paste(tile, (x, label + 2))
        if anchor and t == anchor - 1:
            draw.rectangle([x - 2, label, x + width + 1, label + height + 3], outline=(255, 220, 0), width=2)
        draw.text((x + 2, 1), f"{t + 1}", fill=(255, 220, 0) if anchor and t == anchor - 1 else (230, 230, 230))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
