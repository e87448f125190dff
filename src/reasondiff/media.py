"""Reading user images and writing videos, with errors that name the file and the problem.

A bottom layer: it imports nothing of ReasonDiff but `faults`, so `narrator` and everything above can use it."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterable
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
    """Fail before any work, not after it, when `path` cannot be written: a folder (or another non-file) in its
    place, a file where a parent folder should be, a folder this process may not write in (tried with a real
    temporary file, which also catches read-only disks, immutable folders and root's way past permission bits),
    or an existing file that may not be replaced (immutable or append-only: those stop root too)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder")
    if path.exists() and not path.is_file():
        raise ValueError(f"cannot write {path}: it is not a regular file")
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
    if path.is_file():
        _check_replaceable(path)
    return path


def _check_replaceable(path: Path) -> None:
    """An immutable or append-only file refuses a plain open for writing with EPERM, whoever asks (permission bits
    give EACCES instead, and do not stop a rename in a writable folder, so those pass). Nothing is written."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError as err:
        if err.errno == errno.EPERM:
            raise ValueError(f"cannot write {path}: the existing file may not be replaced ({err.strerror}: "
                             "immutable or append-only? see lsattr)") from None


def check_outputs(*paths: str | Path) -> list[Path]:
    """`check_writable` for every file of an output set, before the work that makes them."""
    return [check_writable(path) for path in paths]


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


def backup_path(path: Path) -> Path:
    """Where the previous `path` waits while a new set is placed: put back if placing fails, deleted once it is done."""
    return path.with_name(f".backup-{path.name}")


class OutputError(OSError):
    """A file of an output set could not be written or placed. One line: which file, why, and whether the
    previous set is back in place (it is, unless the message says where it was kept)."""


def _first_line(err: BaseException) -> str:
    """The error's first line (imageio appends ffmpeg's command and its whole stderr to the message)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def write_together(writers: dict[Path, Callable[[Path], object]], drop: Iterable[Path] = ()) -> None:
    """Write a set of files that belong together (a video, its script, its contact sheet) as a transaction: the
    new set is placed whole or the previous set stays whole, and no `.partial-*`/`.backup-*` file is left.
    `drop`: files of the previous set the new one does not have (a report without its chart), removed with it.

    Each writer fills a temporary file (`partial_path`). Only when all are written are the previous files moved
    aside (`backup_path`) and the new ones renamed in; if any step fails, the new files go and the previous ones
    are renamed back; once all are in, the backups are deleted. A kill (no cleanup) leaves only one run's files
    in place, the other run's hidden beside them: a reader never sees a mix of two runs.

    Raises OutputError (one line naming the file) for a failure while writing or placing; anything else (a bug,
    Ctrl-C) is raised as it is, after the same rollback.
    """
    from .faults import checkpoint

    finals = [Path(final) for final in writers]
    try:
        for final, write in zip(finals, writers.values()):
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
                write(partial_path(final))
                _check_size_limit(partial_path(final))
            except OSError as err:  # a full disk, a file-size limit, a failed encoder
                raise OutputError(f"could not write {final}: {_first_line(err)}; nothing was replaced") from err
            checkpoint()
        _place(finals, [Path(path) for path in drop if Path(path) not in finals], checkpoint)
    finally:
        for final in finals:  # after success they are renamed away already; after a failure, half-written
            partial_path(final).unlink(missing_ok=True)


def _check_size_limit(path: Path) -> None:
    """A file that reached the file-size limit (`ulimit -f`) was cut there: raise as the write should have. Python
    gets EFBIG, but a writer's subprocess (ffmpeg) is killed by SIGXFSZ and its caller returns as if it had finished."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and path.is_file() and path.stat().st_size >= limit:
        raise OSError(errno.EFBIG, f"{os.strerror(errno.EFBIG)} (cut at the file-size limit of {limit} bytes)")


def _place(finals: list[Path], drop: list[Path], checkpoint: Callable[[], None]) -> None:
    """Move the previous files aside, rename the new ones in; on any failure undo both (see `write_together`)."""
    moved, placed, current = [], [], None
    try:
        for current in [*finals, *drop]:
            if current.is_symlink() or (current.exists() and not current.is_dir()):  # a folder refuses the rename
                os.replace(current, backup_path(current))
                moved.append(current)
                checkpoint()
        for current in finals:
            os.replace(partial_path(current), current)
            placed.append(current)
            checkpoint()
    except BaseException as err:
        kept = _roll_back(moved, placed)
        if not isinstance(err, OSError):
            raise
        where = f"the previous {kept} could not be put back: it is kept as {backup_path(kept)}" if kept else (
            "nothing was replaced")
        raise OutputError(f"could not place {current}: {err.strerror or _first_line(err)}; {where}") from err
    for final in [*finals, *drop]:
        backup_path(final).unlink(missing_ok=True)


def _roll_back(moved: list[Path], placed: list[Path]) -> Path | None:
    """Remove the new files placed so far and rename the previous ones back; the first file that could not be
    put back (it stays at its backup name), or None."""
    for final in placed:
        final.unlink(missing_ok=True)
    stuck = None
    for final in moved:
        try:
            os.replace(backup_path(final), final)
        except OSError:
            stuck = stuck or final
    return stuck


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
