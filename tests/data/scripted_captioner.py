"""A captioner that answers from the pixels (the frame index the synthetic videos carry), with no model."""

from synthetic import read_index


class ScriptedCaptioner:
    """`caption(frames)` -> "frame N" for each frame; records the batch sizes it was called with."""

    def __init__(self):
        self.batches = []

    def caption(self, frames):
        self.batches.append(len(frames))
        import numpy as np

        return [f"frame {read_index(np.asarray(frame))}" for frame in frames]
