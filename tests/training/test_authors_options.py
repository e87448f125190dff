"""Options the authors' training used that ours does not by default: LoRA on the feed-forward layers, and a
shift-5 schedule with a Gaussian timestep weighting."""

import pytest
import torch
from safetensors.torch import load_file
from test_trainer import trainer_for

from reasondiff import AlignFormer, ReasonDiffPipeline
from reasondiff.models import tiny_wan
from reasondiff.training.flow_matching import NUM_TRAIN_TIMESTEPS, timestep_weight

AUTHORS_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2"]  # their q, k, v, o, ffn.0, ffn.2


def test_lora_on_the_feed_forward_layers_trains_exports_and_loads(tmp_path, toy_cache):
    trainer = trainer_for(tmp_path, toy_cache, stage=1, max_steps=2, lora_target_modules=AUTHORS_TARGETS)
    export = trainer.train()
    keys = load_file(str(export / "pytorch_lora_weights.safetensors")).keys()
    assert any(".ffn.net.0.proj.lora_A" in k for k in keys) and any(".ffn.net.2.lora_B" in k for k in keys)
    pipe = ReasonDiffPipeline(**tiny_wan.wan_components(seed=0), alignformer=AlignFormer.from_pretrained(export / "alignformer"))
    pipe.load_reasondiff_lora(str(export))
    assert hasattr(pipe.transformer.blocks[0].ffn.net[2], "lora_A")


def test_the_gaussian_weighting_has_mean_one_on_the_shifted_grid_and_peaks_mid_way():
    grid = torch.linspace(1.0, 0.0, NUM_TRAIN_TIMESTEPS + 1, dtype=torch.float64)[:-1]
    grid = 5 * grid / (1 + 4 * grid)
    weights = timestep_weight(grid, shift=5.0)
    assert weights.mean().item() == pytest.approx(1.0, abs=1e-9) and weights.min().item() == pytest.approx(0.0, abs=1e-12)
    assert weights[(grid - 0.5).abs().argmin()] == weights.max()  # t = 500


def test_the_weighting_scales_each_samples_error(tmp_path, toy_cache):
    trainer = trainer_for(tmp_path, toy_cache, stage=1, weighting="gaussian", shift=5.0)
    prediction = torch.zeros(2, 16, 3, 4, 4)
    target = torch.stack([torch.ones(16, 3, 4, 4), 2 * torch.ones(16, 3, 4, 4)])  # squared errors 1 and 4
    sigma = torch.tensor([0.5, 0.9])
    expected = (timestep_weight(sigma, 5.0) * torch.tensor([1.0, 4.0])).mean()
    torch.testing.assert_close(trainer._flow_loss(prediction, target, sigma, torch.tensor([0, 0])), expected)


def test_the_anchor_term_adds_the_error_of_each_samples_anchor_frame_only(tmp_path, toy_cache):
    trainer = trainer_for(tmp_path, toy_cache, stage=1, anchor_weight=2.0)
    prediction = torch.zeros(2, 16, 3, 4, 4)
    target = torch.zeros(2, 16, 3, 4, 4)
    target[0, :, 2] = 3.0  # sample 0: error 9 on latent frame 2 only
    target[1, :, 0] = 1.0  # sample 1: error 1 on latent frame 0 only
    # sample 0's anchor is frame 2 (its error counts again, doubled), sample 1's is frame 1 (no extra error)
    loss = trainer._flow_loss(prediction, target, torch.tensor([0.5, 0.5]), torch.tensor([2, 1]))
    expected = ((9 / 3 + 2 * 9) + (1 / 3 + 0)) / 2
    assert loss.item() == pytest.approx(expected)
    plain = trainer_for(tmp_path / "plain", toy_cache, stage=1)
    assert plain._flow_loss(prediction, target, torch.tensor([0.5, 0.5]), torch.tensor([2, 1])).item() == pytest.approx(
        (9 / 3 + 1 / 3) / 2)


def test_narrator_error_points_three_latent_frames_at_the_generic_sentence():
    from reasondiff.training.augment import latent_frame_of_pixels, replace_frame_prompts

    text = torch.randn(4, 2, 8, 5)
    captions = torch.tensor([[0] * 9 + [1] * 8] * 4)  # 17 pixel frames = 5 latent frames
    lengths = torch.tensor([[8, 3]] * 4)
    generic = torch.randn(8, 5)
    streams = [torch.Generator().manual_seed(i) for i in range(4)]
    embeds, new_lengths, index = replace_frame_prompts(text, lengths, captions, (generic, 6), streams, p=1.0, frames=3)
    assert torch.equal(embeds[:, :2], text) and all(torch.equal(embeds[b, 2], generic) for b in range(4))
    assert new_lengths.tolist() == [[8, 3, 6]] * 4  # the sentence's length travels with it
    latent = latent_frame_of_pixels(17)
    for b in range(4):
        replaced = set(latent[index[b] == 2].tolist())
        assert len(replaced) == 3 and torch.equal(index[b][index[b] != 2], captions[b][index[b] != 2])
        assert all((index[b][latent == k] == 2).all() for k in replaced)  # whole latent frames
    untouched = replace_frame_prompts(text, lengths, captions, (generic, 6), streams, p=0.0, frames=3)[2]
    assert torch.equal(untouched, captions)


def test_the_trainer_feeds_the_encoded_sentence_to_the_alignformer(tmp_path, toy_cache):
    from reasondiff.conditioning import encode_texts
    from test_trainer import fixed_batch

    trainer = trainer_for(tmp_path, toy_cache, stage=1, narrator_error={"p": 1.0, "frames": 1, "sentence": "a red cat"})
    c = tiny_wan.wan_components(seed=0)
    want, length = encode_texts(c["tokenizer"], c["text_encoder"], ["a red cat"], 512, device="cpu",
                                return_lengths=True)
    torch.testing.assert_close(trainer.generic[0], want[0])
    assert trainer.generic[1] == int(length[0]) == int(want[0].ne(0).any(-1).sum())
    seen = []
    trainer.alignformer.register_forward_pre_hook(lambda m, args: seen.append(args[2].clone()))
    batch = fixed_batch(toy_cache)
    trainer.compute_loss(batch, epoch=0)
    trainer.compute_loss(batch, epoch=0)
    narratives = seen[0]  # [B, F, L, D]
    generic_frames = (narratives - trainer.generic[0]).abs().amax(dim=(2, 3)).eq(0)  # [B, F]
    assert generic_frames.sum(1).eq(1).all()  # exactly one latent frame per clip reads the sentence
    assert torch.equal(seen[0], seen[1])  # the same choice for the same (seed, epoch, sample)
