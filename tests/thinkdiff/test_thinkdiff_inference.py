import numpy as np
import PIL.Image
import pytest
import thinkdiff_toy as toy
import torch
from diffusers import CogVideoXPipeline, FluxPipeline, WanImageToVideoPipeline

from reasondiff.thinkdiff import Aligner, ThinkDiffCLIP, ThinkDiffLVLM, render, tiny
from reasondiff.thinkdiff.inference import COBSAT_INSTRUCTION, t5_encode


def capture_text(transformer):
    """Record the text tokens the diffusion transformer receives (encoder_hidden_states) on every call."""
    seen = []
    handle = transformer.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["encoder_hidden_states"].detach().clone()), with_kwargs=True)
    return seen, handle


@pytest.fixture(scope="module")
def lvlm_parts():
    processor = tiny.qwen2vl_processor()
    return tiny.qwen2vl(0, processor), processor


def picture(seed):
    return PIL.Image.fromarray(np.random.default_rng(seed).integers(0, 255, (56, 56, 3), dtype=np.uint8))


def lvlm_tokens(pipe_encoder, lvlm_parts, image_seed=0):
    vlm, processor = lvlm_parts
    aligner = Aligner.from_text_encoder(pipe_encoder, in_dim=tiny.VLM_DIM)
    tokens, text = ThinkDiffLVLM(vlm, processor, aligner, max_new_tokens=6).encode(
        ["red: ", picture(image_seed), "blue: ", picture(image_seed + 1), "green: ", COBSAT_INSTRUCTION],
        min_new_tokens=6)
    return tokens, text


def test_lvlm_into_flux_end_to_end(lvlm_parts):
    pipe = FluxPipeline(**tiny.flux_components(0))
    pipe.set_progress_bar_config(disable=True)
    tokens, _ = lvlm_tokens(pipe.text_encoder_2, lvlm_parts)
    assert tokens.shape == (1, 6, tiny.T5_DIM)  # one aligned token per generated token
    seen, handle = capture_text(pipe.transformer)
    try:
        out = render(pipe, tokens, height=32, width=32, num_inference_steps=2, output_type="np",
                     generator=torch.Generator().manual_seed(0))
    finally:
        handle.remove()
    assert out.images.shape == (1, 32, 32, 3) and np.isfinite(out.images).all()
    assert len(seen) == 2 and all(torch.equal(s, tokens) for s in seen)  # the aligned tokens ARE the prompt
    other, _ = lvlm_tokens(pipe.text_encoder_2, lvlm_parts, image_seed=5)
    out2 = render(pipe, other, height=32, width=32, num_inference_steps=2, output_type="np",
                  generator=torch.Generator().manual_seed(0))
    assert np.abs(out2.images - out.images).max() > 1e-4  # other in-context images, another image out


def test_clip_variant_concatenates_image_tokens_and_t5_text_eq5():
    pipe = FluxPipeline(**tiny.flux_components(0))
    pipe.set_progress_bar_config(disable=True)
    aligner = Aligner.from_text_encoder(pipe.text_encoder_2, in_dim=tiny.CLIP_DIM)
    clip = ThinkDiffCLIP(tiny.clip_vision(0), tiny.clip_image_processor(), aligner, pipe.tokenizer_2,
                         pipe.text_encoder_2)
    images = [toy.toy_image("a red square on a blue background"), toy.toy_image("a big star on a green background")]
    tokens = clip.encode(images, "a cat")
    text = t5_encode(pipe.tokenizer_2, pipe.text_encoder_2, "a cat")
    assert tokens.shape == (1, 2 * 5 + text.shape[1], tiny.T5_DIM)  # 5 tokens per image, then the text
    torch.testing.assert_close(tokens[:, 10:], text)
    torch.testing.assert_close(tokens[:, 5:10], clip.encode(images[1:])[:, :5])
    out = render(pipe, tokens, height=32, width=32, num_inference_steps=2, output_type="np")
    assert out.images.shape == (1, 32, 32, 3)


def test_cogvideox_gets_aligned_tokens_then_t5_prompt_cut_to_its_text_length(lvlm_parts):
    pipe = CogVideoXPipeline(**tiny.cogvideox_components(0))
    pipe.set_progress_bar_config(disable=True)
    tokens, _ = lvlm_tokens(pipe.text_encoder, lvlm_parts)
    seen, handle = capture_text(pipe.transformer)
    try:
        out = render(pipe, tokens, prompt="a cat walks", height=16, width=16, num_frames=9, num_inference_steps=2,
                     output_type="np", guidance_scale=6.0)
    finally:
        handle.remove()
    assert out.frames.shape == (1, 9, 16, 16, 3) and np.isfinite(out.frames).all()
    cond = seen[0][1:]  # classifier-free guidance: [negative, positive]
    assert cond.shape == (1, 16, tiny.T5_DIM)  # exactly max_text_seq_length
    torch.testing.assert_close(cond[:, :6], tokens)
    prompt = pipe._get_t5_prompt_embeds("a cat walks", max_sequence_length=16)
    torch.testing.assert_close(cond[:, 6:], prompt[:, :10])


def test_wan_reads_umt5_aligned_tokens_zero_padded_to_512(lvlm_parts):
    pipe = WanImageToVideoPipeline(**tiny.wan_components(0))
    pipe.set_progress_bar_config(disable=True)
    tokens, _ = lvlm_tokens(pipe.text_encoder, lvlm_parts)  # aligner initialised from the UMT5 encoder
    seen, handle = capture_text(pipe.transformer)
    try:
        out = render(pipe, tokens, prompt="a cat", image=toy.toy_image("a red circle on a white background", 64),
                     height=64, width=64, num_frames=5, num_inference_steps=2, output_type="np", guidance_scale=1.0)
    finally:
        handle.remove()
    assert out.frames.shape == (1, 5, 64, 64, 3) and np.isfinite(out.frames).all()
    text = seen[0]
    assert text.shape == (1, 512, tiny.T5_DIM)
    torch.testing.assert_close(text[:, :6], tokens)
    n = t5_encode(pipe.tokenizer, pipe.text_encoder, "a cat").shape[1]
    torch.testing.assert_close(text[:, 6:6 + n], t5_encode(pipe.tokenizer, pipe.text_encoder, "a cat"))
    assert text[:, 6 + n:].abs().sum() == 0


def test_an_unknown_pipeline_is_refused():
    class NotAPipeline:
        pass

    with pytest.raises(ValueError, match="no ThinkDiff decoder"):
        render(NotAPipeline(), torch.zeros(1, 2, 3))


def test_clip_variant_with_text_only_is_plain_t5_and_nothing_is_refused():
    pipe = FluxPipeline(**tiny.flux_components(0))
    aligner = Aligner.from_text_encoder(pipe.text_encoder_2, in_dim=tiny.CLIP_DIM)
    clip = ThinkDiffCLIP(tiny.clip_vision(0), tiny.clip_image_processor(), aligner, pipe.tokenizer_2,
                         pipe.text_encoder_2)
    torch.testing.assert_close(clip.encode([], "a cat"), t5_encode(pipe.tokenizer_2, pipe.text_encoder_2, "a cat"))
    with pytest.raises(ValueError, match="at least one image"):
        clip.encode([])
