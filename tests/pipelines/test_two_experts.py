"""Wan2.2-I2V-A14B's two experts in every mode: diffusers' switching rule, c*, narratives and LoRA on both."""

import numpy as np
import pytest
import torch
from diffusers import WanImageToVideoPipeline
from fakes import VASE_STORY, ScriptedNarrator
from helpers import CALL, generator
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from wan22 import BOUNDARY_RATIO, two_expert_components, two_expert_pipeline

from reasondiff import Narration, ReasonDiffPipeline
from reasondiff.pipelines import MODES
from reasondiff.pipelines.hub import LORA_FILE
from reasondiff.pipelines.loading import load_pipeline
from reasondiff.pipelines.narrated import generate

PROMPT = "a cat plays in the room"
STEPS = {**CALL, "num_inference_steps": 4}  # timesteps 999, 900 (high-noise expert), 750, 500 (low-noise expert)


def diffusers_reference(image, **overrides):
    wan = WanImageToVideoPipeline(**two_expert_components(seed=0))
    wan.set_progress_bar_config(disable=True)
    return wan(image=image, prompt=PROMPT, generator=generator(0), **{**STEPS, **overrides}).frames


class ExpertCalls:
    """Records, per expert, the timestep and the inputs of every forward call."""

    def __init__(self, pipe):
        self.calls = {"transformer": [], "transformer_2": []}
        for name in self.calls:
            getattr(pipe, name).register_forward_pre_hook(self._recorder(name), with_kwargs=True)

    def _recorder(self, name):
        def record(module, args, kwargs):
            self.calls[name].append({k: v.detach().clone() for k, v in kwargs.items() if torch.is_tensor(v)})
        return record

    def timesteps(self, name):
        return sorted({int(call["timestep"][0]) for call in self.calls[name]}, reverse=True)


def test_wan_mode_is_bit_equal_to_diffusers_two_expert_pipeline(condition_image):
    pipe = two_expert_pipeline()
    experts = ExpertCalls(pipe)
    out = generate(pipe, condition_image, PROMPT, mode="wan", generator=generator(0), **STEPS)
    np.testing.assert_array_equal(out.frames, diffusers_reference(condition_image))
    assert experts.timesteps("transformer") == [999, 900] and experts.timesteps("transformer_2") == [750, 500]
    assert pipe.config.boundary_ratio == BOUNDARY_RATIO and pipe.image_encoder is None


def test_our_loop_reduces_to_diffusers_two_experts_with_each_guidance_scale(condition_image):
    """The ReasonDiff loop given what Wan gets (image at frame 1, the prompt at every frame) gives what Wan2.2
    gives, including guidance_scale_2 on the low-noise expert; another guidance_scale_2 gives another video."""
    trivial = Narration(position=1, descriptions=[PROMPT] * 17)
    run = lambda scale_2: two_expert_pipeline()(  # noqa: E731
        condition_image, PROMPT, narration=trivial, mode="no_enhanced_latents", generator=generator(0),
        guidance_scale_2=scale_2, **STEPS).frames
    np.testing.assert_allclose(run(None), diffusers_reference(condition_image), rtol=0, atol=1e-6)
    low = run(2.0)
    np.testing.assert_allclose(low, diffusers_reference(condition_image, guidance_scale_2=2.0), rtol=0, atol=1e-6)
    assert np.abs(low - run(None)).max() > 1e-4


@pytest.mark.parametrize("mode", ["reasondiff", "no_multi_prompt", "no_enhanced_latents"])
def test_both_experts_read_the_same_condition_and_the_frame_wise_narratives(condition_image, mode):
    pipe = two_expert_pipeline()
    experts = ExpertCalls(pipe)
    out = generate(pipe, condition_image, PROMPT, narration=VASE_STORY, mode=mode, generator=generator(0), **STEPS)
    assert out.frames.shape == (1, 17, 64, 64, 3) and np.isfinite(out.frames).all()
    assert experts.timesteps("transformer") == [999, 900] and experts.timesteps("transformer_2") == [750, 500]
    high, low = experts.calls["transformer"][0], experts.calls["transformer_2"][0]
    assert torch.equal(high["hidden_states"][:, 16:], low["hidden_states"][:, 16:])  # mask + c* (or Wan's zeros)
    # one 512-token context per distinct latent-frame text: VASE_STORY's 3 descriptions and the 2 mixtures of
    # the latent frames that straddle a change (pixels 2-5, 10-13); the user's prompt alone in "no_multi_prompt"
    contexts = 1 if mode == "no_multi_prompt" else 5
    for call in (high, low):
        assert call["encoder_hidden_states"].shape[1] == contexts * 512  # no image tokens: Wan2.2 has no CLIP
        assert "encoder_hidden_states_image" not in call


@pytest.mark.parametrize("expert, boundary_ratio", [("transformer", 0.0), ("transformer_2", 1.0)])
def test_each_expert_attends_frame_wise_to_the_narration(condition_image, expert, boundary_ratio):
    """With the boundary at an end one expert takes every step. Rewriting the last segment (pixel frames 11-17)
    changes its first cross-attention's output of latent frames 3 and 4 only."""
    pipe = two_expert_pipeline(boundary_ratio=boundary_ratio)
    outputs = []
    getattr(pipe, expert).blocks[0].attn2.register_forward_hook(lambda m, a, out: outputs.append(out.detach().clone()))
    rewritten = Narration(position=17, descriptions=VASE_STORY.descriptions[:10] + ["the vase glows green"] * 7)
    for narration in (VASE_STORY, rewritten):
        generate(pipe, condition_image, PROMPT, narration=narration, mode="no_enhanced_latents", generator=generator(0),
             **{**CALL, "num_inference_steps": 1})
    change = (outputs[2] - outputs[0]).abs().reshape(5, 16, -1).amax(dim=(1, 2))  # first conditional passes
    assert torch.all(change[:3] == 0) and torch.all(change[3:] > 1e-4), change


def test_every_mode_runs_with_two_experts_and_differs(condition_image):
    pipe = two_expert_pipeline()
    frames = {mode: generate(pipe, condition_image, PROMPT, narrator=ScriptedNarrator(), mode=mode, generator=generator(0),
                         **STEPS).frames for mode in MODES}
    assert all(f.shape == (1, 17, 64, 64, 3) and np.isfinite(f).all() for f in frames.values())
    values = list(frames.values())
    assert all(np.abs(a - b).max() > 1e-4 for i, a in enumerate(values) for b in values[i + 1:])


def random_lora(transformer, seed):
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.3, generator=generator(seed))
    return get_peft_model_state_dict(transformer)


def test_the_stage_1_lora_goes_into_both_experts_and_is_off_in_the_baselines(condition_image, tmp_path):
    donor = two_expert_pipeline()
    ReasonDiffPipeline.save_lora_weights(tmp_path / "high", transformer_lora_layers=random_lora(donor.transformer, 1))
    ReasonDiffPipeline.save_lora_weights(tmp_path / "low", transformer_lora_layers=random_lora(donor.transformer_2, 2))
    run = lambda p, mode: p(condition_image, PROMPT, narration=VASE_STORY, mode=mode,  # noqa: E731
                            generator=generator(0), **STEPS).frames
    base = two_expert_pipeline()
    before = {mode: run(base, mode) for mode in ("reasondiff", "wan")}

    same = two_expert_pipeline()
    same.load_reasondiff_lora(str(tmp_path / "high"))
    for model in (same.transformer, same.transformer_2):
        assert "reasondiff" in model.peft_config
    lora_a = lambda m, name="reasondiff": m.blocks[0].attn1.to_q.lora_A[name].weight  # noqa: E731
    assert torch.equal(lora_a(same.transformer), lora_a(same.transformer_2))
    np.testing.assert_array_equal(run(same, "wan"), before["wan"])  # the baseline is the base model
    tuned = run(same, "reasondiff")
    assert np.abs(tuned - before["reasondiff"]).max() > 1e-3

    own = two_expert_pipeline()
    own.load_reasondiff_lora(str(tmp_path / "high"), low_noise_path=str(tmp_path / "low"))
    assert not torch.equal(lora_a(own.transformer), lora_a(own.transformer_2))
    assert torch.equal(lora_a(own.transformer_2), lora_a(donor.transformer_2, "default"))
    assert np.abs(run(own, "reasondiff") - tuned).max() > 1e-4


def test_a_two_expert_folder_loads_with_its_alignformer_and_lora(condition_image, tmp_path):
    pipe = two_expert_pipeline(predicted_mask_value=0.25)
    pipe.save_pretrained(tmp_path)
    lora = random_lora(two_expert_pipeline().transformer, 1)
    ReasonDiffPipeline.save_lora_weights(tmp_path, transformer_lora_layers=lora)
    assert (tmp_path / "transformer_2" / "diffusion_pytorch_model.safetensors").is_file()
    assert (tmp_path / LORA_FILE).is_file() and not (tmp_path / "image_encoder").exists()

    loaded, _ = load_pipeline(str(tmp_path), device="cpu")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.boundary_ratio == BOUNDARY_RATIO and loaded.config.predicted_mask_value == 0.25
    assert loaded.image_encoder is None and loaded.alignformer is not None
    for name in ("transformer", "transformer_2"):
        assert "reasondiff" in getattr(loaded, name).peft_config, name
    experts = ExpertCalls(loaded)
    out = loaded(condition_image, PROMPT, narration=VASE_STORY, generator=generator(0), **STEPS)
    assert experts.timesteps("transformer_2") == [750, 500] and np.isfinite(out.frames).all()
    plain = ReasonDiffPipeline.from_pretrained(tmp_path)  # without the LoRA: our saved weights, unchanged
    plain.set_progress_bar_config(disable=True)
    for name in ("transformer", "transformer_2", "alignformer"):
        a, b = getattr(pipe, name).state_dict(), getattr(plain, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_a_diffusers_two_expert_folder_loads_into_reasondiff(condition_image, tmp_path):
    WanImageToVideoPipeline(**two_expert_components(seed=0)).save_pretrained(tmp_path)
    pipe = ReasonDiffPipeline.from_pretrained(tmp_path)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.transformer_2 is not None and pipe.alignformer is None
    out = generate(pipe, condition_image, PROMPT, mode="wan", generator=generator(0), **STEPS)
    np.testing.assert_allclose(out.frames, diffusers_reference(condition_image), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="needs an AlignFormer"):
        generate(pipe, condition_image, PROMPT, narration=VASE_STORY, **STEPS)
