import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import WanImageToVideoPipeline
from fakes import VASE_STORY, ScriptedNarrator
from helpers import CALL, generator, reasondiff_pipeline
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from reasondiff import Narration, ReasonDiffPipeline
from reasondiff.models import tiny_wan
from reasondiff.pipelines import MODES
from reasondiff.conditioning import encode_video, place_image
from reasondiff.pipelines.narrated import generate

PROMPT = "a cat plays in the room"


def wan_reference(condition_image, prompt=PROMPT, seed=0):
    wan = WanImageToVideoPipeline(**tiny_wan.wan_components(seed=0))
    wan.set_progress_bar_config(disable=True)
    return wan(image=condition_image, prompt=prompt, generator=generator(seed), **CALL).frames


def test_wan_mode_equals_diffusers_wan_i2v(condition_image):
    expected = wan_reference(condition_image)
    out = generate(reasondiff_pipeline(), condition_image, PROMPT, mode="wan", generator=generator(0), **CALL)
    np.testing.assert_array_equal(out.frames, expected)
    assert out.narration is None and out.prompt == PROMPT


@pytest.mark.parametrize("mode", ["wan", "rewrite"])
def test_baseline_modes_run_the_parents_own_call_on_this_pipeline(condition_image, mode, monkeypatch):
    """No throwaway WanImageToVideoPipeline: the parent's __call__ runs once, on the pipeline itself."""
    calls, parent_call = [], WanImageToVideoPipeline.__call__

    def spy(self, *args, **kwargs):
        calls.append((self, kwargs["prompt"]))
        return parent_call(self, *args, **kwargs)

    pipe = reasondiff_pipeline()
    monkeypatch.setattr(WanImageToVideoPipeline, "__call__", spy)
    monkeypatch.setattr(WanImageToVideoPipeline, "__init__", lambda *a, **k: pytest.fail("a pipeline was built"))
    narrator = ScriptedNarrator()
    out = generate(pipe, condition_image, PROMPT, narrator=narrator, mode=mode, **{**CALL, "num_inference_steps": 1})
    assert calls == [(pipe, out.prompt)] and out.prompt == (PROMPT if mode == "wan" else narrator.rewritten)


def test_a_wan2_1_pipeline_registers_diffusers_wan2_2_config():
    pipe = reasondiff_pipeline()
    assert pipe.transformer_2 is None and pipe.config.boundary_ratio is None and pipe.experts == [pipe.transformer]
    assert pipe.config.expand_timesteps is False and pipe.config.transformer_2 == (None, None)


def test_reasondiff_loop_reduces_to_wan_for_a_first_frame_image_and_one_description(condition_image):
    """Our own conditioning, frame-wise attention and denoising loop, given what Wan gets, give what Wan gives."""
    expected = wan_reference(condition_image)
    trivial = Narration(position=1, descriptions=[PROMPT] * 17)
    out = generate(reasondiff_pipeline(), condition_image, PROMPT, narration=trivial, mode="no_enhanced_latents",
                                generator=generator(0), **CALL)
    np.testing.assert_allclose(out.frames, expected, rtol=0, atol=1e-6)


class TransformerInputs:
    """Records what the DiT receives: hidden_states = cat[noisy(16), mask(4), condition(16)]."""

    def __init__(self, pipe):
        self.calls = []
        pipe.transformer.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs):
        self.calls.append({k: v.detach().clone() for k, v in kwargs.items() if torch.is_tensor(v)})


@pytest.mark.parametrize("position", [1, 9, 17])
def test_anchor_latent_mask_and_c_star_reach_the_transformer(condition_image, position):
    pipe = reasondiff_pipeline()
    recorder = TransformerInputs(pipe)
    c_stars = []
    pipe.alignformer.register_forward_hook(lambda m, a, out: c_stars.append(out.detach().clone()))
    story = VASE_STORY.model_copy(update={"position": position})
    generate(pipe, condition_image, PROMPT, narration=story, generator=generator(0), **CALL)

    latent_index = 0 if position == 1 else (position - 2) // 4 + 1
    hidden = recorder.calls[0]["hidden_states"]
    mask, condition = hidden[:, 16:20], hidden[:, 20:]
    pixels = pipe.video_processor.preprocess(condition_image, height=64, width=64)
    with torch.no_grad():  # c_i: the image encoded on its own, the same latent wherever it is placed
        expected_anchor = encode_video(pipe.vae, pixels[:, :, None])[:, :, 0]
        in_zero_video = encode_video(pipe.vae, place_image(pixels, [position], 17))[:, :, latent_index]
    assert torch.equal(condition[:, :, latent_index], expected_anchor)
    if position == 1:  # the causal VAE codes frame 1 alone: Wan's own condition latent is the same there
        torch.testing.assert_close(in_zero_video, expected_anchor, rtol=0, atol=1e-5)
    else:
        assert not torch.allclose(in_zero_video, expected_anchor, atol=1e-2)

    expected_mask = torch.zeros(1, 4, 5, 8, 8)
    if position == 1:
        expected_mask[:, :, 0] = 1  # latent frame 0 holds pixel frame 1 alone, in all 4 mask channels
    else:
        expected_mask[:, (position - 2) % 4, latent_index] = 1
    assert torch.equal(mask, expected_mask)

    (c_star,) = c_stars
    others = [k for k in range(5) if k != latent_index]
    assert torch.equal(condition[:, :, others], c_star[:, :, others])
    assert not torch.allclose(condition[:, :, others], expected_anchor[:, :, None].expand(-1, -1, 4, -1, -1))
    for call in recorder.calls:  # same condition at every step, conditional and unconditional passes
        assert torch.equal(call["hidden_states"][:, 16:], hidden[:, 16:])


def test_the_dit_attends_frame_wise_to_the_narration(condition_image):
    """Rewriting the last segment (pixel frames 11-17) changes the first cross-attention's output of latent
    frames 3 (pixels 10-13) and 4 (14-17) only. Without c* the DiT input does not depend on the text."""
    pipe = reasondiff_pipeline()
    outputs = []
    pipe.transformer.blocks[0].attn2.register_forward_hook(lambda m, a, out: outputs.append(out.detach().clone()))
    rewritten = Narration(position=17, descriptions=VASE_STORY.descriptions[:10] + ["the vase glows green"] * 7)
    for narration in (VASE_STORY, rewritten):
        generate(pipe, condition_image, PROMPT, narration=narration, mode="no_enhanced_latents", generator=generator(0),
             **{**CALL, "num_inference_steps": 1})
    before, after = outputs[0], outputs[2]  # first conditional pass of each call
    change = (after - before).abs().reshape(5, 16, -1).amax(dim=(1, 2))
    assert torch.all(change[:3] == 0) and torch.all(change[3:] > 1e-4), change
    assert torch.equal(outputs[1], outputs[3])  # the unconditional pass reads the negative prompt only


def test_the_alignformer_masks_the_tokens_the_tokenizer_counted(condition_image, monkeypatch):
    """Text lengths are carried from the tokenizer (`conditioning.encode_texts`) to the AlignFormer's token mask,
    not read back off the embeddings' zero padding (`padded_lengths` is only for a caller's `prompt_embeds`)."""
    from reasondiff.frames import group_by_latent_frame
    from reasondiff.pipelines import pipeline_reasondiff

    def refuse(embeds):
        raise AssertionError("text lengths re-derived from the embeddings")

    monkeypatch.setattr(pipeline_reasondiff, "padded_lengths", refuse)
    pipe = reasondiff_pipeline()
    masks = []
    pipe.alignformer.register_forward_pre_hook(lambda module, args: masks.append(args[3]))
    generate(pipe, condition_image, PROMPT, narration=VASE_STORY, generator=generator(0), **{**CALL, "num_inference_steps": 1})
    tokens = {t: int(pipe.tokenizer(t).attention_mask.count(1)) for t in set(VASE_STORY.descriptions)}
    longest = [max(tokens[t] for t in texts) for texts in group_by_latent_frame(VASE_STORY.descriptions)]
    (mask,) = masks
    assert mask.sum(-1).tolist() == [longest] and len(set(longest)) > 1  # a mixed frame: its longest text
    assert torch.equal(mask, torch.arange(mask.shape[-1]) < mask.sum(-1, keepdim=True))  # the first tokens


def test_predicted_mask_value_is_a_config(condition_image):
    pipe = reasondiff_pipeline(predicted_mask_value=0.5)
    recorder = TransformerInputs(pipe)
    generate(pipe, condition_image, PROMPT, narration=VASE_STORY, generator=generator(0), **CALL)
    mask = recorder.calls[0]["hidden_states"][:, 16:20]
    assert mask[:, 3, 4].eq(1).all()  # pixel frame 17 = latent 4, 4th sub-frame
    assert mask.eq(1).sum() == 64 and mask.eq(0.5).sum() == mask.numel() - 64


def test_every_mode_runs(condition_image):
    pipe = reasondiff_pipeline()
    outputs = {}
    for mode in MODES:
        narrator = ScriptedNarrator()
        out = generate(pipe, condition_image, PROMPT, narrator=narrator, mode=mode, generator=generator(0), **CALL)
        assert out.frames.shape == (1, 17, 64, 64, 3) and np.isfinite(out.frames).all(), mode
        outputs[mode] = out
    assert outputs["rewrite"].prompt == ScriptedNarrator().rewritten
    assert outputs["reasondiff"].narration == VASE_STORY
    frames = [o.frames for o in outputs.values()]
    assert all(np.abs(a - b).max() > 1e-4 for i, a in enumerate(frames) for b in frames[i + 1 :])


def test_narrator_is_asked_only_without_a_narration(condition_image):
    pipe = reasondiff_pipeline()
    narrator = ScriptedNarrator()
    generate(pipe, condition_image, PROMPT, narrator=narrator, generator=generator(0), **CALL)
    assert narrator.calls == [("narrate", PROMPT, 17)]
    generate(pipe, condition_image, PROMPT, narration=VASE_STORY, narrator=narrator, generator=generator(0), **CALL)
    assert len(narrator.calls) == 1


def test_narratives_steer_the_video_and_the_ablation_ignores_them(condition_image):
    pipe = reasondiff_pipeline()
    other = Narration(position=17, descriptions=["a dog runs across the garden"] * 17)
    run = lambda narration, mode: generate(pipe, condition_image, PROMPT, narration=narration, mode=mode,  # noqa: E731
                                       generator=generator(0), **CALL).frames
    assert np.abs(run(VASE_STORY, "reasondiff") - run(other, "reasondiff")).max() > 1e-4
    np.testing.assert_array_equal(run(VASE_STORY, "no_multi_prompt"), run(other, "no_multi_prompt"))


def test_output_types(condition_image):
    pipe = reasondiff_pipeline()
    kwargs = {**CALL, "num_inference_steps": 1}
    latents = generate(pipe, condition_image, PROMPT, narration=VASE_STORY, **{**kwargs, "output_type": "latent"}).frames
    assert latents.shape == (1, 16, 5, 8, 8)
    pil = generate(pipe, condition_image, PROMPT, narration=VASE_STORY, **{**kwargs, "output_type": "pil"}).frames
    assert len(pil[0]) == 17 and isinstance(pil[0][0], PIL.Image.Image) and pil[0][0].size == (64, 64)
    pt = generate(pipe, condition_image, PROMPT, narration=VASE_STORY, **{**kwargs, "output_type": "pt"}).frames
    assert tuple(pt.shape) == (1, 17, 3, 64, 64)
    frames, narration, prompt = generate(pipe, condition_image, PROMPT, narration=VASE_STORY, return_dict=False, **kwargs)
    assert narration == VASE_STORY and prompt == PROMPT


def test_save_and_from_pretrained_round_trip(condition_image, tmp_path):
    pipe = reasondiff_pipeline(predicted_mask_value=0.25)
    pipe.save_pretrained(tmp_path)
    assert (tmp_path / "alignformer" / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(tmp_path.rglob("*.bin"))
    loaded = ReasonDiffPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.predicted_mask_value == 0.25
    for name in ("transformer", "vae", "text_encoder", "image_encoder", "alignformer"):
        a, b = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    run = lambda p: p(condition_image, PROMPT, narration=VASE_STORY, generator=generator(0), **CALL).frames  # noqa: E731
    # Same weights; safetensors hands back tensors at other memory alignments, which changes float
    # summation order in a few kernels (~1e-7 per op), so the comparison allows rounding noise.
    np.testing.assert_allclose(run(loaded), run(pipe), atol=1e-4)
    again = ReasonDiffPipeline.from_pretrained(tmp_path)
    again.set_progress_bar_config(disable=True)
    np.testing.assert_array_equal(run(again), run(loaded))


def test_from_pretrained_dtype_reaches_the_alignformer(tmp_path):
    """diffusers' loader casts the components it knows; ours must follow, or bf16 users get a float32 AlignFormer."""
    reasondiff_pipeline().save_pretrained(tmp_path)
    pipe = ReasonDiffPipeline.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.alignformer.dtype == torch.bfloat16
    per_component = ReasonDiffPipeline.from_pretrained(tmp_path, dtype={"default": torch.bfloat16, "vae": torch.float32})
    assert per_component.alignformer.dtype == torch.bfloat16 and per_component.vae.dtype == torch.float32


def test_a_plain_wan_folder_loads_and_takes_an_alignformer(condition_image, tmp_path):
    WanImageToVideoPipeline(**tiny_wan.wan_components(seed=0)).save_pretrained(tmp_path)
    pipe = ReasonDiffPipeline.from_pretrained(tmp_path)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.alignformer is None
    with pytest.raises(ValueError, match="needs an AlignFormer"):
        generate(pipe, condition_image, PROMPT, narration=VASE_STORY, **CALL)
    out = generate(pipe, condition_image, PROMPT, narration=VASE_STORY, mode="no_enhanced_latents", **CALL)
    assert out.frames.shape == (1, 17, 64, 64, 3)
    pipe = ReasonDiffPipeline.from_pretrained(tmp_path, alignformer=tiny_wan.alignformer(seed=0))
    assert generate(pipe, condition_image, PROMPT, narration=VASE_STORY, **CALL).frames.shape == (1, 17, 64, 64, 3)


def test_lora_weights_load_into_the_dit(condition_image, tmp_path):
    """A stage-1 LoRA, saved in the format diffusers writes, changes the video and reloads to the same video."""
    pipe = reasondiff_pipeline()
    run = lambda p: p(condition_image, PROMPT, narration=VASE_STORY, generator=generator(0), **CALL).frames  # noqa: E731
    base = run(pipe)
    pipe.transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    with torch.no_grad():
        for name, param in pipe.transformer.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.3, generator=generator(1))
    tuned = run(pipe)
    assert np.abs(tuned - base).max() > 1e-3
    ReasonDiffPipeline.save_lora_weights(tmp_path, transformer_lora_layers=get_peft_model_state_dict(pipe.transformer))
    fresh = reasondiff_pipeline()
    fresh.load_lora_weights(tmp_path)
    np.testing.assert_allclose(run(fresh), tuned, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"mode": "magic"}, ValueError, "unknown mode"),
        ({"prompt": "  "}, ValueError, "non-empty"),
        ({"num_frames": 16}, ValueError, r"4k\+1"),
        ({"height": 60}, ValueError, "multiples of 16"),
        ({"narration": None}, ValueError, "needs a narration"),
        ({"mode": "rewrite", "narration": None}, ValueError, "needs a narrator"),
        ({"narration": Narration(position=3, descriptions=["x"] * 9)}, ValueError, "describes 9 frames"),
        ({"image": "photo.png"}, TypeError, "PIL image"),
        ({"pipe": {"expand_timesteps": True}}, ValueError, "expand_timesteps=True"),
    ],
)
def test_bad_calls_are_named(condition_image, kwargs, error, message):
    pipe = reasondiff_pipeline(**kwargs.pop("pipe", {}))
    call = {"image": condition_image, "prompt": PROMPT, "narration": VASE_STORY, **CALL, **kwargs}
    with pytest.raises(error, match=message):
        generate(pipe, **call)


def test_a_pipeline_without_a_transformer_is_refused():
    with pytest.raises(ValueError, match="needs a transformer"):
        ReasonDiffPipeline(**{**tiny_wan.wan_components(seed=0), "transformer": None})
