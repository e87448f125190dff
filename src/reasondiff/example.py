"""The bundled unpaired example (a SynthWorld kitchen with a broken vase, and "A cat plays in the room"): what
`reasondiff generate` and the studio use when given no image and prompt.

Its own module, above `narrator` (it reads a `Narration`) and `media`, so neither of those imports the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class Example:
    """A bundled unpaired example: a condition image and a prompt that describe different moments,
    and a hand-written 81-frame narration of the story that joins them."""

    image_path: Path
    prompt: str
    narration_path: Path

    @property
    def narration(self):
        from .narrator.schema import Narration

        return Narration.from_json(self.narration_path.read_text())


def bundled_example(name: str = "broken_vase") -> Example:
    root = resources.files("reasondiff") / "assets" / "examples"
    spec = json.loads((root / f"{name}.json").read_text())
    return Example(
        image_path=Path(str(root / spec["image"])),
        prompt=spec["prompt"],
        narration_path=Path(str(root / spec["narration"])),
    )


def bundled_episode(name: str = "thinkdiff_episode") -> list:
    """A bundled in-context episode: its texts and PIL images, interleaved in order (what a ThinkDiff VLM reads)."""
    import PIL.Image

    root = resources.files("reasondiff") / "assets" / "examples"
    spec = json.loads((root / f"{name}.json").read_text())
    items: list = []
    for item in spec["items"]:
        if "text" in item:
            items.append(item["text"])
        else:
            with PIL.Image.open(str(root / item["image"])) as image:
                items.append(image.convert("RGB"))
    return items
