"""VisionNarrator: an MLLM places the condition image in time and writes one description per frame."""

from .schema import Narration, Segment

__all__ = ["Narration", "Segment"]
