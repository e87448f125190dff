"""Shared builders for tests: tiny pipelines and a scripted narrator (no network, no weights)."""

import torch

from reasondiff import Narration, ReasonDiffPipeline
from reasondiff.models import tiny_wan

CALL = dict(height=64, width=64, num_frames=17, num_inference_steps=2, guidance_scale=5.0, output_type="np")

VASE_STORY = Narration.from_segments(
    17, [(1, 4, "an intact vase"), (5, 10, "a cat enters and knocks the vase"), (11, 17, "broken vase on the floor")]
)


def trained_like_alignformer(seed=0):
    """A tiny AlignFormer whose zero-initialised output has moved, so c* differs from the repeated anchor."""
    model = tiny_wan.alignformer(seed=seed)
    with torch.no_grad():
        model.proj_out.weight.normal_(std=0.5, generator=torch.Generator().manual_seed(seed + 100))
        model.proj_out.bias.normal_(std=0.1, generator=torch.Generator().manual_seed(seed + 101))
    return model.eval()


def reasondiff_pipeline(seed=0, **kwargs):
    pipe = ReasonDiffPipeline(**tiny_wan.wan_components(seed=seed), alignformer=trained_like_alignformer(seed), **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


class ScriptedNarrator:
    """Answers from a script and records its calls, as a VisionNarrator backend would answer from an MLLM."""

    def __init__(self, narration=VASE_STORY, rewritten="a cat plays in the room and breaks a vase"):
        self.narration, self.rewritten, self.calls = narration, rewritten, []

    def narrate(self, image, prompt, num_frames):
        self.calls.append(("narrate", prompt, num_frames))
        return self.narration

    def rewrite(self, image, prompt):
        self.calls.append(("rewrite", prompt))
        return self.rewritten
