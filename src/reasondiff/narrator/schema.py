"""The narrator's answer: where the condition image sits in the video, and what every frame shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..frames import group_by_latent_frame, pixel_to_latent_index


class Segment(NamedTuple):
    """A run of frames sharing one description (the paper's Fig. 6 writes them "Frame@1-20")."""

    start: int  # 1-based, inclusive
    end: int  # 1-based, inclusive
    description: str


class Narration(BaseModel):
    """`{"position": j, "descriptions": [one per frame]}`, the format the paper's instruction asks for (§3.2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position: int = Field(ge=1, description="1-based frame at which the condition image appears")
    descriptions: list[str] = Field(min_length=1, description="one description per pixel frame")
    metadata: dict[str, Any] = Field(default_factory=dict, description="provenance and repair notes")

    @field_validator("position", mode="before")
    @classmethod
    def _not_a_flag(cls, value: Any) -> Any:
        """JSON `true` would pass as frame 1 (pydantic reads a bool as an int): a script saying `true` is broken."""
        if isinstance(value, bool):
            raise ValueError(f"must be a frame number (1, 2, ...), got {str(value).lower()}")
        return value

    @model_validator(mode="after")
    def _fits(self) -> "Narration":
        if self.position > len(self.descriptions):
            raise ValueError(f"position {self.position} is beyond the {len(self.descriptions)} described frames")
        empty = [i + 1 for i, d in enumerate(self.descriptions) if not d.strip()]
        if empty:
            raise ValueError(f"frames {empty} have empty descriptions")
        return self

    @property
    def num_frames(self) -> int:
        return len(self.descriptions)

    @classmethod
    def from_segments(cls, position: int, segments: list[tuple[int, int, str]], **metadata: Any) -> "Narration":
        """Build from (start, end, description) runs covering frames 1..f without gaps or overlaps."""
        descriptions: list[str] = []
        for start, end, text in sorted(segments):
            if start != len(descriptions) + 1 or end < start:
                raise ValueError(f"segment {start}-{end} leaves a gap or overlaps (expected start {len(descriptions) + 1})")
            descriptions += [text] * (end - start + 1)
        return cls(position=position, descriptions=descriptions, metadata=metadata)

    def resample(self, num_frames: int) -> "Narration":
        """The same script told over `num_frames` frames (nearest frame in time; first and last stay first and last)."""
        if num_frames < 1:
            raise ValueError(f"num_frames must be positive, got {num_frames}")
        old = self.num_frames

        def nearest(frame: int, old_count: int, new_count: int) -> int:  # 1-based frame -> 1-based frame
            if new_count == 1 or old_count == 1:
                return 1
            return round((frame - 1) * (new_count - 1) / (old_count - 1)) + 1

        descriptions = [self.descriptions[nearest(n, num_frames, old) - 1] for n in range(1, num_frames + 1)]
        position = nearest(self.position, old, num_frames)
        return Narration(position=position, descriptions=descriptions, metadata={**self.metadata, "resampled_from": old})

    def segments(self) -> list[Segment]:
        runs: list[Segment] = []
        for frame, text in enumerate(self.descriptions, start=1):
            if runs and runs[-1].description == text:
                runs[-1] = runs[-1]._replace(end=frame)
            else:
                runs.append(Segment(frame, frame, text))
        return runs

    @property
    def latent_position(self) -> int:
        """Latent index of the condition image (requires a 4k+1 frame count)."""
        return pixel_to_latent_index(self.position, self.num_frames)

    def latent_descriptions(self) -> list[tuple[str, ...]]:
        """For each latent frame, the descriptions of the pixel frames it holds (1 for frame 0, then 4 each)."""
        return group_by_latent_frame(self.descriptions)

    def to_json(self, **kwargs: Any) -> str:
        return self.model_dump_json(**kwargs)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Narration":
        return cls.model_validate_json(text)

    @classmethod
    def from_file(cls, path: str | Path) -> "Narration":
        """The script in the JSON file `path`, or ValueError with one line naming the file, the field and the
        problem (pydantic's own message spans 3 to 52 lines with links, one block per fault)."""
        path = Path(path)
        if path.is_dir():
            raise ValueError(f"narration file {path} is a folder, not a JSON file")
        if not path.is_file():
            raise ValueError(f"narration file not found: {path}")
        try:
            return cls.from_json(path.read_bytes())
        except OSError as err:
            raise ValueError(f"cannot read narration file {path}: {err.strerror or err}") from None
        except ValidationError as err:
            raise ValueError(f"{path} is not a valid narration: {one_line(err)}") from None


def one_line(err: ValidationError) -> str:
    """The first fault of a pydantic error as `field: problem (got value)`, and how many more there are."""
    faults = err.errors(include_url=False)
    first = faults[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "json_invalid":
        message = f"not JSON ({message.removeprefix('Invalid JSON: ')})"
    elif first["type"] == "extra_forbidden":
        message = "not a field of a narration (position, descriptions, metadata)"
    elif first["type"] not in ("value_error", "missing") and where:
        shown = repr(first.get("input"))
        message += f", got {shown if len(shown) <= 40 else shown[:37] + '...'}"
    more = f" (and {len(faults) - 1} more)" if len(faults) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"
