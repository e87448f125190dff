"""JSON-lines files that jobs append to (manifest.jsonl, caption parts, clips.jsonl, ...), read back after a kill.

A row is appended with its newline and fsynced, so a SIGKILL can leave at most one torn row: the last line,
without its newline, cut mid-row. Reading for a resume drops that row with a warning and cuts it from the
file (the next append then starts on a fresh line, and the item it belonged to is redone). Any other line
that is not JSON is damage a kill cannot explain: it stops the job with the file and line named.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` through a fsynced temporary and a rename: a reader sees the old file or the new,
    and a failure (a full disk, a file-size limit, an immutable file) leaves the old one and no temporary."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append `rows`, one JSON object per line, and fsync: a row is on disk before the job moves on."""
    if not rows:
        return
    with open(path, "a") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path, *, repair: bool = False) -> list[dict]:
    """The rows of `path` ([] when it does not exist). A torn last row is dropped with a warning, and with `repair`
    (a job about to append again) cut from the file; any other bad line raises ValueError naming file and line."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    *lines, tail = data.split(b"\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            rows.append(_parse(line, path, number))
    if tail.strip():
        try:
            json.loads(tail)
        except ValueError:
            log.warning("%s: dropped a torn last line (line %d, %d bytes: a run was killed while writing it); "
                        "its item is redone", path, len(lines) + 1, len(tail))
            if repair:
                with open(path, "r+b") as f:
                    f.truncate(len(data) - len(tail))
            return rows
        rows.append(_parse(tail, path, len(lines) + 1))
        if repair:  # a whole row that lost only its newline: give it one, so the next row starts afresh
            with open(path, "ab") as f:
                f.write(b"\n")
    return rows


def _parse(line: bytes, path: Path, number: int) -> dict:
    try:
        row = json.loads(line)
    except ValueError as err:
        raise ValueError(f"{path}, line {number}, is not a JSON row ({err}); fix or delete that line") from None
    if not isinstance(row, dict):
        raise ValueError(f"{path}, line {number}, is not a JSON object; fix or delete that line")
    return row
