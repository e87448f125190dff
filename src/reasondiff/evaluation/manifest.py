"""The benchmark manifest `eval run` reads: JSON Lines, one case per line.

Fields read (anything else on a line is ignored, so `reasondiff data build-unpaired` rows load as they are):

- `id` (string, unique): names the case in results and video files.
- `image` (path): the condition image; relative paths are relative to the manifest's folder.
- `prompt` (string): the text condition.
- `captions` (list of strings, optional): ground-truth caption of every real frame; CLIP Score (Text) and the
  ground-truth narration need them.
- `position` (int ≥ 1, optional): the real frame the image shows (1-based, within `captions`); the
  ground-truth narration needs it.
- `frames` (int ≥ 1, optional): the frame count every video of the case has (SynthWorld-Bench: 17); `eval score`
  refuses a video with another.

`captions` and `position` are in every row or in none: a row without them would be dropped from the metrics
that read them (CLIP Text, SynthWorld's four) and the means would be over fewer cases than the benchmark has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EvalCase:
    id: str
    image: Path
    prompt: str
    captions: list[str] | None = None
    position: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def ground_truth_narration(self, num_frames: int):
        """The real clip's script (true position, per-frame captions) retold over `num_frames` frames."""
        from ..narrator.schema import Narration

        if not self.captions or self.position is None:
            raise ValueError(f"case {self.id!r} has no ground-truth 'position' and 'captions' to narrate from; "
                             "add them to the manifest or pass a narrator (--narrator SPEC)")
        return Narration(position=self.position, descriptions=list(self.captions)).resample(num_frames)


def _fail(path: Path, line: int, message: str) -> ValueError:
    return ValueError(f"{path}:{line}: {message}")


def _check_like_first(path: Path, number: int, row: dict, first: tuple[int, dict] | None) -> None:
    """ValueError naming the row when it lacks `captions`/`position` the first row has, or has them without it."""
    if first is None:
        return
    line, model = first
    for key in ("position", "captions"):
        if (row.get(key) is None) != (model.get(key) is None):
            has, lacks = (line, number) if row.get(key) is None else (number, line)
            raise _fail(path, number, f"line {lacks} has no {key!r} while line {has} has one: give every case "
                        f"its {key!r} (or none), else it drops out of the metrics that read it")


def read_manifest(path: str | Path) -> list[EvalCase]:
    """Parse and check every line; errors name the file, the line and the field."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"manifest not found: {path}")
    cases: list[EvalCase] = []
    seen: set[str] = set()
    first = None  # (line, row) of the first case: the others hold the same optional fields
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as err:
            raise _fail(path, number, f"not valid JSON ({err})") from err
        if not isinstance(row, dict):
            raise _fail(path, number, "each line must be a JSON object")
        for key in ("id", "image", "prompt"):
            if key not in row:
                raise _fail(path, number, f"missing field {key!r}")
        case_id = str(row["id"])
        if not case_id or "/" in case_id or case_id.startswith("."):
            raise _fail(path, number, f"id {case_id!r} cannot name a file")
        if case_id in seen:
            raise _fail(path, number, f"duplicate id {case_id!r}")
        seen.add(case_id)
        prompt = row["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise _fail(path, number, "'prompt' must be a non-empty string")
        image = Path(row["image"])
        image = image if image.is_absolute() else path.parent / image
        if not image.is_file():
            raise _fail(path, number, f"image not found: {image}")
        captions = row.get("captions")
        if captions is not None and (not isinstance(captions, list) or not captions
                                     or not all(isinstance(c, str) and c.strip() for c in captions)):
            raise _fail(path, number, "'captions' must be a non-empty list of non-empty strings")
        position = row.get("position")
        if position is not None:
            if isinstance(position, bool) or not isinstance(position, int) or position < 1:
                raise _fail(path, number, f"'position' must be a 1-based frame number, got {position!r}")
            if captions is not None and position > len(captions):
                raise _fail(path, number, f"'position' {position} is beyond the {len(captions)} captioned frames")
        frames = row.get("frames")
        if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
            raise _fail(path, number, f"'frames' must be a frame count of at least 1, got {frames!r}")
        _check_like_first(path, number, row, first)
        first = first or (number, row)
        known = {"id", "image", "prompt", "captions", "position"}
        cases.append(EvalCase(case_id, image.resolve(), prompt, captions, position,
                              {k: v for k, v in row.items() if k not in known}))
    if not cases:
        raise ValueError(f"{path} holds no cases")
    return cases
