"""A backend that plays the narrator's roles itself (the SynthWorld rules) is called directly: no conversation, no
parsing, and still the narrator's checks, cache and provenance."""

import pytest
from PIL import Image

from reasondiff import Narration, VisionNarrator
from reasondiff.narrator import NarrationError
from reasondiff.narrator.backends.base import NarratingBackend

IMAGE = Image.new("RGB", (16, 16), (200, 10, 10))


class Rules:
    cache_id = "rules-test"

    def __init__(self, frames=None):
        self.calls, self.frames = [], frames

    def narrate(self, image, prompt, num_frames):
        self.calls.append(("narrate", prompt, num_frames))
        n = self.frames or num_frames
        return Narration(position=2, descriptions=[f"{prompt} {i}" for i in range(n)], metadata={"rule": "r1"})

    def rewrite(self, image, prompt):
        self.calls.append(("rewrite", prompt))
        return f"{prompt}, told from the image"

    def caption(self, frames):
        self.calls.append(("caption", len(frames)))
        return [f"frame of {frame.size[0]} px" for frame in frames]


def test_the_roles_are_called_directly_cached_and_given_provenance(tmp_path):
    rules = Rules()
    assert isinstance(rules, NarratingBackend)
    narrator = VisionNarrator(rules, cache_dir=tmp_path)
    first = narrator.narrate(IMAGE, "  a cat plays ", 5)
    again = VisionNarrator(rules, cache_dir=tmp_path).narrate(IMAGE, "a cat plays", 5)
    assert first == again and first.descriptions == [f"a cat plays {i}" for i in range(5)]
    assert first.metadata == {"rule": "r1", "narrator": "rules-test", "instruction_version": first.metadata[
        "instruction_version"], "prompt": "a cat plays", "attempts": 1}
    assert narrator.rewrite(IMAGE, "a cat plays") == "a cat plays, told from the image"
    assert narrator.caption([IMAGE, IMAGE.resize((8, 8))]) == ["frame of 16 px", "frame of 8 px"]
    assert narrator.caption([IMAGE]) == ["frame of 16 px"]  # cached: the backend is not asked again
    assert rules.calls == [("narrate", "a cat plays", 5), ("rewrite", "a cat plays"), ("caption", 2)]


def test_a_script_of_the_wrong_length_is_refused_and_the_request_checks_still_apply(tmp_path):
    narrator = VisionNarrator(Rules(frames=4), use_cache=False)
    with pytest.raises(NarrationError, match="rules-test scripted 4 frames, not 5"):
        narrator.narrate(IMAGE, "a cat plays", 5)
    with pytest.raises(ValueError, match="the prompt is empty"):
        narrator.narrate(IMAGE, "  ", 5)
