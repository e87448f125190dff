"""The script timeline as the studio shows and edits it: a table of segments plus the anchor frame.

The paper writes the narrator's script as runs of frames ("Frame@1-20: the vase is intact", Fig. 6) with the
condition image at one frame. Users edit exactly that: a table of (start, end, description) rows and the
anchor position. These functions turn a `Narration` into that form and back, and refuse an edited table that
does not describe every frame exactly once, naming the row at fault. No Gradio here, so they test in
milliseconds.
"""

from __future__ import annotations

import html
import math

from ..narrator.schema import Narration

HEADERS = ["start", "end", "description"]
# One colour per segment, cycling (Fig. 3 colours each key prompt differently).
COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"]


def to_rows(narration: Narration) -> list[list]:
    """[[start, end, description], ...], one row per run of identical descriptions."""
    return [[s.start, s.end, s.description] for s in narration.segments()]


def _cell_int(value, row: int, column: str) -> int:
    if isinstance(value, str):
        value = value.strip()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"row {row}: {column} must be a frame number, got {value!r}") from None
    if math.isnan(number) or number != int(number):
        raise ValueError(f"row {row}: {column} must be a whole frame number, got {value!r}")
    return int(number)


def records(table) -> list[list]:
    """Rows from whatever the Dataframe hands over (a pandas DataFrame, a list of lists, or Gradio's dict)."""
    if table is None:
        return []
    if hasattr(table, "values") and hasattr(table, "columns"):  # pandas
        return [list(r) for r in table.values.tolist()]
    if isinstance(table, dict):
        return [list(r) for r in table.get("data", [])]
    return [list(r) for r in table]


def is_blank(row: list) -> bool:
    return all(cell is None or (isinstance(cell, float) and math.isnan(cell)) or str(cell).strip() == "" for cell in row)


def from_rows(table, position, num_frames: int, **metadata) -> Narration:
    """A Narration from an edited table and anchor, or ValueError saying which row or value is wrong.

    Rows may come in any order; blank rows (the Dataframe's "add row" leaves them) are ignored.
    """
    rows = [r for r in records(table) if not is_blank(r)]
    if not rows:
        raise ValueError("the script is empty: add at least one segment (start, end, description)")
    segments = []
    for i, row in enumerate(rows, start=1):
        if len(row) < 3:
            raise ValueError(f"row {i}: expected start, end and description")
        start, end = _cell_int(row[0], i, "start"), _cell_int(row[1], i, "end")
        text = "" if row[2] is None else str(row[2]).strip()
        if not text:
            raise ValueError(f"row {i} (frames {start}-{end}): the description is empty")
        if not 1 <= start <= end <= num_frames:
            raise ValueError(f"row {i}: frames {start}-{end} must satisfy 1 <= start <= end <= {num_frames}")
        segments.append((start, end, text))
    segments.sort()
    expected = 1
    for start, end, _ in segments:
        if start > expected:
            raise ValueError(f"frames {expected}-{start - 1} have no description: extend a segment to cover them")
        if start < expected:
            raise ValueError(f"the segment starting at frame {start} overlaps the one before it (which ends at {expected - 1})")
        expected = end + 1
    if expected <= num_frames:
        raise ValueError(f"frames {expected}-{num_frames} have no description: the script must reach frame {num_frames}")
    try:
        anchor = _cell_int(position, 0, "anchor")
    except ValueError:
        anchor = None
    if anchor is None or not 1 <= anchor <= num_frames:
        raise ValueError(f"the image's frame (anchor) must be between 1 and {num_frames}, got {position!r}")
    return Narration.from_segments(anchor, segments, **metadata)


def starter(prompt: str, num_frames: int) -> Narration:
    """A script to edit when no narrator is available: the prompt over every frame, the image first.

    This is what plain Wan does; the user turns it into a story by splitting rows and moving the anchor.
    """
    text = prompt.strip() or "describe what happens in these frames"
    return Narration(position=1, descriptions=[text] * num_frames, metadata={"source": "starter"})


def strip_html(narration: Narration) -> str:
    """A compact coloured strip, one block per segment sized by its frames, with the image's frame marked."""
    n = narration.num_frames
    blocks = []
    for i, seg in enumerate(narration.segments()):
        width = 100 * (seg.end - seg.start + 1) / n
        label = f"Frame@{seg.start}-{seg.end}" if seg.end > seg.start else f"Frame@{seg.start}"
        text = html.escape(seg.description)
        blocks.append(
            f'<div class="rd-seg" title="{label}: {text}" style="width:{width:.3f}%;background:{COLOURS[i % len(COLOURS)]};'
            f'display:inline-block;box-sizing:border-box;padding:2px 4px;overflow:hidden;white-space:nowrap;'
            f'text-overflow:ellipsis;color:white;font-size:12px;border-right:1px solid white">{label} {text}</div>'
        )
    left = 100 * (narration.position - 0.5) / n
    marker = (
        f'<div class="rd-anchor" data-frame="{narration.position}" style="position:absolute;left:{left:.3f}%;top:-4px;'
        f'bottom:-4px;width:3px;margin-left:-1px;background:black"></div>'
    )
    caption = (
        f'<div style="font-size:12px;margin-top:6px">{n} frames; the image is frame <b>{narration.position}</b> '
        f'(in "{html.escape(narration.descriptions[narration.position - 1])}")</div>'
    )
    return (
        f'<div class="rd-timeline"><div style="position:relative;display:flex;width:100%;border-radius:4px">'
        f'{"".join(blocks)}{marker}</div>{caption}</div>'
    )
