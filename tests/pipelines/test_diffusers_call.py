"""`ReasonDiffPipeline.__call__` is `WanImageToVideoPipeline.__call__` argument for argument, plus diffusers'
keyframe names (`frame_prompts`, `image_frame_index`): a diffusers user's call means what it means in diffusers."""

import numpy as np
import pytest
import torch
from diffusers import WanImageToVideoPipeline
from fakes import VASE_STORY
from helpers import CALL, generator, reasondiff_pipeline

from reasondiff.models import tiny_wan
from reasondiff.pipelines.narrated import generate

PROMPT = "a cat plays in the room"
FAST = {**CALL, "num_inference_steps": 1}


def test_diffusers_positional_order_gets_diffusers_meaning(condition_image):
    """image, prompt, negative_prompt, height, width, num_frames, steps, guidance — in diffusers' order."""
    args = (condition_image, PROMPT, "blurry, static", 64, 64, 17, 2, 5.0)
    wan = WanImageToVideoPipeline(**tiny_wan.wan_components(seed=0))
    wan.set_progress_bar_config(disable=True)
    expected = wan(*args, generator=generator(0), output_type="np").frames
    ours = reasondiff_pipeline()(*args, generator=generator(0), output_type="np").frames
    np.testing.assert_array_equal(ours, expected)
    other_negative = wan(*args[:2], "", *args[3:], generator=generator(0), output_type="np").frames
    assert not np.array_equal(other_negative, expected)  # the third argument was read as the negative prompt


def test_the_keyframe_call_is_what_the_narrated_method_renders(condition_image):
    pipe = reasondiff_pipeline()
    narrated = generate(pipe, condition_image, PROMPT, narration=VASE_STORY, generator=generator(0), **FAST).frames
    keyframed = pipe(condition_image, PROMPT, frame_prompts=VASE_STORY.descriptions,
                     image_frame_index=VASE_STORY.position - 1, generator=generator(0), **FAST).frames
    np.testing.assert_array_equal(keyframed, narrated)
    elsewhere = pipe(condition_image, PROMPT, frame_prompts=VASE_STORY.descriptions, image_frame_index=0,
                     generator=generator(0), **FAST).frames
    assert not np.array_equal(elsewhere, narrated)  # the index moved the image


def test_num_videos_per_prompt_repeats_the_story_with_its_own_noise(condition_image):
    pipe = reasondiff_pipeline()
    keyframes = dict(frame_prompts=VASE_STORY.descriptions, image_frame_index=VASE_STORY.position - 1)
    two = pipe(condition_image, PROMPT, num_videos_per_prompt=2, generator=[generator(0), generator(1)],
               **keyframes, **FAST).frames
    alone = [pipe(condition_image, PROMPT, generator=generator(seed), **keyframes, **FAST).frames[0] for seed in (0, 1)]
    assert two.shape == (2, 17, 64, 64, 3)
    np.testing.assert_allclose(two, np.stack(alone), atol=5e-4)
    assert np.abs(two[0] - two[1]).max() > 0.05


def test_image_embeds_stand_for_the_clip_encoding(condition_image):
    pipe = reasondiff_pipeline()
    keyframes = dict(frame_prompts=VASE_STORY.descriptions, image_frame_index=4)
    encoded = pipe(condition_image, PROMPT, generator=generator(0), **keyframes, **FAST).frames
    with pytest.raises(ValueError, match="Cannot forward both"):  # diffusers' rule, kept
        pipe(condition_image, PROMPT, image_embeds=pipe.encode_image(condition_image, "cpu"), **keyframes, **FAST)
    assert encoded.shape == (1, 17, 64, 64, 3)


@pytest.mark.parametrize("kwargs, message", [
    ({"image_frame_index": 17}, r"0\.\.16"),
    ({"image_frame_index": -1}, r"0\.\.16"),
    ({"image_frame_index": True}, r"0\.\.16"),
    ({"image_frame_index": [0, 4]}, "2 entries in image_frame_index for a batch of 1"),
    ({"frame_prompts": ["x"] * 9}, "one non-empty text per frame"),
    ({"frame_prompts": "one text"}, "one non-empty text per frame"),
    ({"frame_prompts": ["x"] * 17, "prompt_embeds": torch.zeros(1, 512, 32)}, "does not read"),
    ({"frame_prompts": ["x"] * 17, "last_image": "anything"}, "last_image"),
])
def test_bad_keyframe_arguments_are_named_before_any_work(condition_image, kwargs, message):
    pipe = reasondiff_pipeline()
    pipe.text_encoder.forward = lambda *a, **k: pytest.fail("the text encoder ran")
    call = {"frame_prompts": VASE_STORY.descriptions, **kwargs}
    prompt = None if "prompt_embeds" in kwargs else PROMPT
    with pytest.raises(ValueError, match=message):
        pipe(condition_image, prompt, **FAST, **call)


def test_enhanced_latents_need_an_alignformer_and_without_them_none_is_needed(condition_image):
    pipe = reasondiff_pipeline()
    pipe.alignformer = None
    keyframes = dict(frame_prompts=VASE_STORY.descriptions, image_frame_index=8)
    with pytest.raises(ValueError, match="needs an AlignFormer"):
        pipe(condition_image, PROMPT, **keyframes, **FAST)
    assert pipe(condition_image, PROMPT, enhanced_latents=False, **keyframes, **FAST).frames.shape == (1, 17, 64, 64, 3)


def test_the_old_narrated_call_still_works_for_one_release_and_says_so(condition_image):
    pipe = reasondiff_pipeline()
    expected = generate(pipe, condition_image, PROMPT, narration=VASE_STORY, generator=generator(0), **FAST)
    with pytest.warns(FutureWarning, match="reasondiff.generate"):
        old = pipe(condition_image, PROMPT, narration=VASE_STORY, generator=generator(0), **FAST)
    np.testing.assert_array_equal(old.frames, expected.frames)
    assert old.narration == VASE_STORY
    with pytest.warns(FutureWarning):  # the old third positional argument was the narration
        positional = pipe(condition_image, PROMPT, VASE_STORY, generator=generator(0), **FAST)
    np.testing.assert_array_equal(positional.frames, expected.frames)
    with pytest.raises(TypeError, match="unexpected keyword arguments narator"):
        pipe(condition_image, PROMPT, narator=None, **FAST)
