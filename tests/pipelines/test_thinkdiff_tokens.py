"""ThinkDiff's aligned tokens drive ReasonDiffPipeline end to end, on the shipped mini model (issue #19, item 6)."""

import numpy as np
import pytest
import torch
from helpers import generator

from reasondiff import Narration
from reasondiff.example import bundled_example
from reasondiff.media import load_image
from reasondiff.pipelines.loading import load_pipeline
from reasondiff.thinkdiff import Aligner, ThinkDiffCLIP, render
from reasondiff.thinkdiff.inference import t5_encode

SIZE = dict(num_frames=17, height=64, width=64, num_inference_steps=2, output_type="np")


@pytest.fixture(scope="module")
def mini():
    pipe, _ = load_pipeline("mini", device="cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def image():
    return load_image(bundled_example().image_path).resize((64, 64))


@torch.no_grad()
def clip_tokens(pipe, images, text=None):
    """ThinkDiff-CLIP (Eq. 5) over the mini's own CLIP and UMT5: an aligner (untrained, seeded), then the text."""
    torch.manual_seed(0)
    aligner = Aligner.from_text_encoder(pipe.text_encoder, in_dim=pipe.image_encoder.config.hidden_size).eval()
    return ThinkDiffCLIP(pipe.image_encoder, pipe.image_processor, aligner, pipe.tokenizer,
                         pipe.text_encoder).encode(images, text)


def text_seen_by(transformer):
    seen = []
    handle = transformer.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["encoder_hidden_states"].detach().clone()), with_kwargs=True)
    return seen, handle


def test_thinkdiff_tokens_are_the_prompt_of_the_mini_model(mini, image):
    tokens = clip_tokens(mini, [image], "a cat")
    seen, handle = text_seen_by(mini.transformer)
    try:
        out = render(mini, tokens, image=image, generator=generator(0), **SIZE)
    finally:
        handle.remove()
    assert out.frames.shape == (1, 17, 64, 64, 3) and np.isfinite(out.frames).all() and out.narration is None
    text = seen[0][:, -512:]  # after the CLIP image tokens of Wan2.1-I2V's cross-attention
    n = tokens.shape[1]
    torch.testing.assert_close(text[:, :n], tokens, rtol=0, atol=0)
    assert text[:, n:].abs().sum() == 0
    other = render(mini, clip_tokens(mini, [image.transpose(0)], "a cat"), image=image, generator=generator(0), **SIZE)
    assert np.abs(other.frames - out.frames).max() > 1e-3  # other in-context images, another video


def test_t5_tokens_through_render_give_the_prompts_video(mini, image):
    """LLME(T), the text half of Eq. 5, through `render` is the prompt T through the pipeline: the encoder run
    without padding rounds a little differently, nothing more."""
    with torch.no_grad():
        tokens = t5_encode(mini.tokenizer, mini.text_encoder, "a cat plays in the room")
    via_tokens = render(mini, tokens, image=image, generator=generator(0), **SIZE).frames
    via_prompt = mini(image, "a cat plays in the room", generator=generator(0), **SIZE).frames
    np.testing.assert_allclose(via_tokens, via_prompt, rtol=0, atol=1e-4)


def test_no_multi_prompt_reads_the_tokens_in_the_dit_and_the_alignformer(mini, image):
    narration = Narration(position=9, descriptions=["a cat"] * 17)
    c_stars = []
    handle = mini.alignformer.register_forward_hook(lambda m, a, out: c_stars.append(out.detach().clone()))
    try:
        run = lambda tokens: render(  # noqa: E731
            mini, tokens, image=image, mode="no_multi_prompt", narration=narration, generator=generator(0), **SIZE)
        out = run(clip_tokens(mini, [image], "a cat"))
        other = run(clip_tokens(mini, [image.transpose(0)], "a cat"))
    finally:
        handle.remove()
    assert out.narration == narration and np.isfinite(out.frames).all()
    assert (c_stars[0] - c_stars[1]).abs().max() > 1e-4  # c* follows the tokens
    assert np.abs(other.frames - out.frames).max() > 1e-3
