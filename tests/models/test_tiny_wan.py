import numpy as np
import torch
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel
from transformers import AutoTokenizer, CLIPVisionModelWithProjection, T5Tokenizer, UMT5EncoderModel

from reasondiff.models import tiny_wan

CALL = dict(prompt="a cat plays in the room", negative_prompt="", height=64, width=64, num_frames=17,
            num_inference_steps=2, guidance_scale=5.0, output_type="np")


def run(pipe, image, seed=0):
    pipe.set_progress_bar_config(disable=True)
    return pipe(image=image, generator=torch.Generator().manual_seed(seed), **CALL).frames


def test_components_are_the_classes_wan_2_1_i2v_loads(wan_components):
    c = wan_components
    assert isinstance(c["transformer"], WanTransformer3DModel)
    assert isinstance(c["vae"], AutoencoderKLWan)
    assert isinstance(c["text_encoder"], UMT5EncoderModel)
    assert isinstance(c["tokenizer"], T5Tokenizer)
    assert isinstance(c["image_encoder"], CLIPVisionModelWithProjection)
    assert type(c["image_processor"]).__name__.startswith("CLIPImageProcessor")
    assert isinstance(c["scheduler"], UniPCMultistepScheduler)
    dit = c["transformer"]
    assert dit.config.in_channels == 36 and dit.config.out_channels == 16
    assert dit.blocks[0].attn2.add_k_proj is not None  # I2V: image tokens have their own K/V
    assert dit.config.text_dim == c["text_encoder"].config.d_model
    assert dit.config.image_dim == c["image_encoder"].config.hidden_size


def test_factory_is_seeded(wan_components):
    again = tiny_wan.wan_components(seed=0)
    other = tiny_wan.wan_components(seed=1)
    for name in ("transformer", "vae", "text_encoder", "image_encoder"):
        a, b, c = (x[name].state_dict() for x in (wan_components, again, other))
        assert all(torch.equal(a[k], b[k]) for k in a), name
        assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point() and a[k].numel() > 1), name


def test_wan_i2v_pipeline_runs_end_to_end(wan_components, condition_image):
    frames = run(WanImageToVideoPipeline(**wan_components), condition_image)
    assert frames.shape == (1, 17, 64, 64, 3)
    assert np.isfinite(frames).all() and frames.min() >= 0 and frames.max() <= 1
    assert frames.std() > 0.01  # not a constant video
    again = run(WanImageToVideoPipeline(**tiny_wan.wan_components(seed=0)), condition_image)
    np.testing.assert_array_equal(frames, again)
    other_seed = run(WanImageToVideoPipeline(**wan_components), condition_image, seed=1)
    assert np.abs(frames - other_seed).max() > 1e-3


def test_pipeline_round_trips_through_save_and_from_pretrained(wan_components, condition_image, tmp_path):
    pipe = WanImageToVideoPipeline(**wan_components)
    pipe.save_pretrained(tmp_path)
    assert list(tmp_path.glob("transformer/*.safetensors")) and not list(tmp_path.rglob("*.bin"))
    loaded = WanImageToVideoPipeline.from_pretrained(tmp_path)
    np.testing.assert_allclose(run(loaded, condition_image), run(pipe, condition_image), atol=1e-4)


def test_tokenizer_keeps_words_whole_and_round_trips(tmp_path):
    tok = tiny_wan.tokenizer()
    assert tok.tokenize("a cat plays in the room") == ["▁a", "▁cat", "▁plays", "▁in", "▁the", "▁room"]
    ids = tok("An Axolotl!", padding="max_length", max_length=24).input_ids
    assert tok.unk_token_id not in ids and ids[-1] == tok.pad_token_id
    tok.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)("An Axolotl!").input_ids == tok("An Axolotl!").input_ids


def test_alignformer_fits_the_tiny_components(wan_components):
    vae, text_encoder, tokenizer = wan_components["vae"], wan_components["text_encoder"], wan_components["tokenizer"]
    video = torch.rand(1, 3, 17, 64, 64) * 2 - 1
    with torch.no_grad():
        latents = vae.encode(video).latent_dist.mode()  # [1, 16, 5, 8, 8]
        tokens = tokenizer(["a cat enters", "the cat runs", "the vase falls", "broken vase", "the cat leaves"],
                           padding="max_length", max_length=12, return_tensors="pt")
        narratives = text_encoder(tokens.input_ids, tokens.attention_mask).last_hidden_state  # [5, 12, 32]
    align = tiny_wan.alignformer(seed=0)
    out = align(latents[:, :, 4], torch.tensor([4]), narratives[None], tokens.attention_mask.bool()[None])
    assert latents.shape == (1, 16, 5, 8, 8)
    assert out.shape == latents.shape
    assert torch.equal(out[:, :, 4], latents[:, :, 4])
