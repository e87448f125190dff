"""VisionNarrator is what ReasonDiffPipeline calls: narrate for the method, rewrite for the baseline."""

import json

from fakes import VASE_STORY
from helpers import generator, reasondiff_pipeline
from reasondiff.pipelines.narrated import generate

STORY = VASE_STORY.resample(5)
FAST = dict(height=32, width=32, num_frames=5, num_inference_steps=1, guidance_scale=1.0, output_type="np")


def test_pipeline_narrates_and_rewrites_through_the_narrator(chat_server, narrator_factory, condition_image):
    narrator = narrator_factory()
    chat_server.answer("```json\n" + json.dumps({"position": 5, "descriptions": STORY.descriptions}) + "\n```")
    chat_server.answer("A cat walks in and knocks the vase off the table.")
    pipe = reasondiff_pipeline()

    out = generate(pipe, condition_image, "A cat plays in the room", narrator=narrator, generator=generator(), **FAST)
    assert out.narration.descriptions == STORY.descriptions and out.narration.position == 5
    assert out.frames.shape[1] == 5

    out = generate(pipe, condition_image, "A cat plays in the room", narrator=narrator, mode="rewrite", generator=generator(), **FAST)
    assert out.prompt == "A cat walks in and knocks the vase off the table."
    assert len(chat_server.requests) == 2
