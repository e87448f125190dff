"""Finding the checkpoint to resume from, and refusing the ones a crash or a full disk left damaged.

A checkpoint folder only gets its final name once complete, but a file can still be damaged afterwards
(a disk that filled up, a copy cut short, a file deleted by hand). `trainer_state.json`, written last,
lists every file of the checkpoint with its size; a checkpoint is usable when that list parses, every
file is there at its size, and the safetensors and zip-format (`torch.save`) files open. Checkpoints
written before the list existed are checked for the files every checkpoint holds.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from safetensors import safe_open

STATE_FILE = "trainer_state.json"


class NoCompleteCheckpoint(ValueError):
    """Checkpoints exist but none can be resumed from (a ValueError: the CLI reports it in one line, exit 2)."""


def file_sizes(folder: Path) -> dict[str, int]:
    """Every file under `folder` (relative path -> bytes), as recorded in `trainer_state.json`."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def problem(folder: Path) -> str | None:
    """Why `folder` cannot be resumed from, naming the file; None when it can."""
    state_file = folder / STATE_FILE
    try:
        state = json.loads(state_file.read_text())
        int(state["step"]), int(state["epoch"]), int(state["batches_done"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{state_file} is missing or unreadable ({type(err).__name__})"
    listed = state.get("files") or {name: None for name in ("optimizer.bin", "scheduler.bin")}
    for name, size in listed.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        if size is not None and path.stat().st_size != size:
            return f"{path} is truncated ({path.stat().st_size} of {size} bytes)"
        reason = _unreadable(path)
        if reason:
            return f"{path} is unreadable ({reason})"
    return None


def _unreadable(path: Path) -> str | None:
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as f:
                f.keys()
        elif path.suffix in (".bin", ".pt"):
            with zipfile.ZipFile(path) as archive:  # torch.save's format: a cut file loses its central directory
                archive.namelist()
    except Exception as err:  # noqa: BLE001 - any failure to open means the file cannot be resumed from
        return type(err).__name__
    return None


def newest_usable(checkpoints: list[Path]) -> tuple[Path | None, list[str]]:
    """The newest checkpoint that passes `problem` (None if there are no checkpoints at all) and a warning for
    each newer one skipped; raises NoCompleteCheckpoint when checkpoints exist but every one is damaged."""
    warnings = []
    for folder in reversed(checkpoints):
        reason = problem(folder)
        if reason is None:
            return folder, warnings
        warnings.append(f"not resuming from {folder.name}: {reason}")
    if checkpoints:
        raise NoCompleteCheckpoint(f"no complete checkpoint to resume from: {'; '.join(warnings)}")
    return None, warnings
