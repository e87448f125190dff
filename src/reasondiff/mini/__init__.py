"""ReasonDiff-mini: SynthWorld, a procedural world of causal events, and models trained on it."""

from .world import AGENTS, OBJECTS, ROOMS, EventScript, FrameState, sample_script

__all__ = ["AGENTS", "OBJECTS", "ROOMS", "EventScript", "FrameState", "sample_script"]
