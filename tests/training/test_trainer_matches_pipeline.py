"""The trainer and the pipeline must hand the DiT the same condition for the same clip, anchor and script:
condition channels (mask and latents, c* included), frame-wise text contexts and their layout, CLIP image
tokens. A model trained on one and sampled with the other learns nothing it can use."""

import pytest
import torch
from PIL import Image
from test_trainer import trainer_for

from reasondiff import Narration, ReasonDiffPipeline
from reasondiff.data import CachedClipDataset, collate_clips
from reasondiff.data.toy import toy_clip
from reasondiff.models import tiny_wan
from reasondiff.pipelines.narrated import generate


def dit_inputs(transformer, layout_state, run) -> dict:
    """The keyword arguments of the first call of `transformer` inside `run()`, with the frame layout it saw."""
    seen = {}

    def hook(module, args, kwargs):
        if not seen:
            seen.update({k: v.detach().clone() for k, v in kwargs.items() if torch.is_tensor(v)})
            seen["frame_to_context"] = layout_state.layout.frame_to_context.clone()
        return None

    handle = transformer.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        run()
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("mode", ["reasondiff", "no_enhanced_latents", "no_multi_prompt"])
def test_the_dit_sees_the_same_condition_in_training_and_in_the_pipeline(tmp_path, toy_cache, mode):
    trainer = trainer_for(tmp_path, toy_cache, stage=1, conditioning=mode, max_steps=1)
    dataset = CachedClipDataset(toy_cache)
    index = next(i for i in range(len(dataset)) if dataset[i]["anchor_position"] > 1)  # past the causal frame
    item = dataset[index]
    position = item["anchor_position"]
    clip = toy_clip(index, 9, 32, 0)  # the clip the toy cache encoded at this index
    assert dataset.rows[index]["clip_id"] == clip.clip_id

    trained = dit_inputs(trainer.transformer, trainer.layout,
                         lambda: trainer.compute_loss(collate_clips([item]), epoch=0))

    pipe = ReasonDiffPipeline(**tiny_wan.wan_components(seed=0), alignformer=trainer.alignformer)
    pipe.set_progress_bar_config(disable=True)
    narration = Narration(position=position, descriptions=list(clip.captions))
    state = pipe.transformer.blocks[0].attn2.processor.state
    sampled = dit_inputs(pipe.transformer, state, lambda: generate(pipe,
        Image.fromarray(clip.frames[position - 1]), clip.clip_prompt, narration=narration, mode=mode, num_frames=9,
        height=32, width=32, num_inference_steps=1, guidance_scale=1.0, output_type="latent",
        generator=torch.Generator().manual_seed(0)))

    latent_channels = pipe.vae.config.z_dim  # the rest of hidden_states is the condition: mask, then latents
    condition = trained["hidden_states"][:, latent_channels:]
    torch.testing.assert_close(sampled["hidden_states"][:, latent_channels:], condition, atol=1e-5, rtol=1e-5)
    assert condition[:, 4:].abs().amax() > 0.1  # a real latent, not two empty conditions agreeing
    torch.testing.assert_close(sampled["encoder_hidden_states"], trained["encoder_hidden_states"],
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sampled["encoder_hidden_states_image"], trained["encoder_hidden_states_image"],
                               atol=1e-5, rtol=1e-5)
    assert torch.equal(sampled["frame_to_context"], trained["frame_to_context"])
    expected_contexts = 1 if mode == "no_multi_prompt" else len(set(clip.captions))
    assert trained["frame_to_context"].unique().numel() <= expected_contexts
