"""What `__call__` accepts beyond one prompt: prompt embeddings, batches of prompts, callbacks checked up front."""

import numpy as np
import pytest
import torch
from fakes import VASE_STORY, ScriptedNarrator
from helpers import CALL, generator, reasondiff_pipeline

from reasondiff import Narration
from reasondiff.pipelines.narrated import generate

PROMPT = "a cat plays in the room"
OTHER_STORY = Narration.from_segments(17, [(1, 8, "a dog runs in the garden"), (9, 17, "the dog sits by a tree")])


@torch.no_grad()  # as in the pipeline: grad mode picks other kernels, ~1e-7 apart
def embeds(pipe, text):
    return pipe.encode_prompt(text, do_classifier_free_guidance=False, max_sequence_length=512)[0]


@pytest.mark.parametrize("mode", ["wan", "no_multi_prompt"])
def test_prompt_embeds_are_the_prompt(condition_image, mode):
    """Where the DiT reads the user's prompt, its embeddings give the same video bit for bit, the negative too."""
    pipe = reasondiff_pipeline()
    run = lambda **kw: generate(pipe, condition_image, narration=VASE_STORY, mode=mode, generator=generator(0),  # noqa: E731
                            **CALL, **kw)
    expected = run(prompt=PROMPT, negative_prompt="blurry")
    out = run(prompt_embeds=embeds(pipe, PROMPT), negative_prompt_embeds=embeds(pipe, "blurry"))
    np.testing.assert_array_equal(out.frames, expected.frames)
    assert out.prompt is None and expected.prompt == PROMPT
    other = run(prompt_embeds=embeds(pipe, "a dog runs in the garden"), negative_prompt_embeds=embeds(pipe, "blurry"))
    assert np.abs(other.frames - expected.frames).max() > 1e-4


@pytest.mark.parametrize("mode", ["wan", "reasondiff", "no_multi_prompt"])
def test_a_batch_of_prompts_is_each_prompt_on_its_own(condition_image, mode):
    """Video b of a batch (its own narration, its own generator) is the video of a call with that prompt alone:
    the contexts are padded across the batch and each video's frames read their own."""
    pipe = reasondiff_pipeline()
    prompts, stories = [PROMPT, "a dog runs in the garden"], [VASE_STORY, OTHER_STORY]
    batch = generate(pipe, condition_image, prompts, narration=stories, mode=mode, generator=[generator(0), generator(1)],
                 **CALL)
    assert batch.frames.shape == (2, 17, 64, 64, 3) and batch.prompt == prompts
    assert batch.narration == (None if mode == "wan" else stories)
    alone = [generate(pipe, condition_image, prompts[b], narration=stories[b], mode=mode, generator=generator(b),
                  **CALL).frames[0] for b in range(2)]
    for b in range(2):  # batched matmuls round differently: up to 1.2e-4 apart, where another video is 0.28 apart
        np.testing.assert_allclose(batch.frames[b], alone[b], rtol=0, atol=5e-4)
        assert np.abs(batch.frames[b] - alone[1 - b]).max() > 1e-2


def test_the_narrator_writes_one_narration_per_prompt_and_rewrites_each(condition_image):
    pipe = reasondiff_pipeline()
    narrator = ScriptedNarrator()
    out = generate(pipe, condition_image, [PROMPT, "a dog"], narrator=narrator, generator=generator(0), **CALL)
    assert narrator.calls == [("narrate", PROMPT, 17), ("narrate", "a dog", 17)]
    assert out.narration == [VASE_STORY, VASE_STORY]
    rewritten = generate(pipe, condition_image, [PROMPT, "a dog"], narrator=narrator, mode="rewrite", generator=generator(0),
                     **CALL)
    assert rewritten.prompt == [narrator.rewritten] * 2
    assert narrator.calls[2:] == [("rewrite", PROMPT), ("rewrite", "a dog")]


class Untouchable:
    """A narrator that must not be asked: the call has to fail before any work."""

    def narrate(self, *args):
        raise AssertionError("the narrator ran before the inputs were checked")

    rewrite = narrate


@pytest.mark.parametrize("mode", ["reasondiff", "wan", "rewrite"])
def test_a_bad_callback_tensor_name_fails_first_and_names_the_key(condition_image, mode):
    pipe = reasondiff_pipeline()
    encoded = []
    pipe.text_encoder.register_forward_hook(lambda *a: encoded.append(1))
    with pytest.raises(ValueError, match=r"found \['noise'\]"):
        generate(pipe, condition_image, PROMPT, narrator=Untouchable(), mode=mode, callback_on_step_end=lambda *a: {},
             callback_on_step_end_tensor_inputs=["latents", "noise"], **CALL)
    assert encoded == []


def test_callbacks_see_and_replace_the_loop_tensors(condition_image):
    pipe = reasondiff_pipeline()
    seen = []

    def zero_latents(pipeline, i, t, tensors):
        seen.append({k: v.shape for k, v in tensors.items()})
        return {"latents": torch.zeros_like(tensors["latents"])}

    out = generate(pipe, condition_image, PROMPT, narration=VASE_STORY, callback_on_step_end=zero_latents,
               callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"], generator=generator(0),
               **{**CALL, "output_type": "latent", "num_inference_steps": 1})
    assert seen == [{"latents": (1, 16, 5, 8, 8), "prompt_embeds": (1, 5 * 512, 32)}]  # 5 narrative contexts
    assert out.frames.abs().sum() == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"prompt": None, "prompt_embeds": torch.zeros(1, 512, 32)}, "does not show the DiT"),
        ({"prompt": None, "prompt_embeds": torch.zeros(1, 77, 32), "mode": "wan"}, r"\[batch, 512, dim\]"),
        ({"prompt_embeds": torch.zeros(1, 512, 32), "mode": "wan"}, "Cannot forward both"),
        ({"prompt": None, "prompt_embeds": torch.zeros(1, 512, 32), "mode": "no_multi_prompt", "narration": None,
          "narrator": ScriptedNarrator()}, "needs a narration"),
        ({"negative_prompt_embeds": torch.zeros(2, 512, 32)}, "negative_prompt_embeds has batch 2"),
        ({"prompt": [PROMPT, ""]}, "non-empty"),
        ({"prompt": [PROMPT, PROMPT], "narration": [VASE_STORY] * 3}, "3 narrations for a batch of 2"),
        ({"guidance_scale_2": 2.0}, "guidance_scale_2"),
    ],
)
def test_bad_new_inputs_are_named(condition_image, kwargs, message):
    call = {"image": condition_image, "prompt": PROMPT, "narration": VASE_STORY, **CALL, **kwargs}
    with pytest.raises(ValueError, match=message):
        reasondiff_pipeline()(**call)
