import pytest
import torch

from reasondiff.pipelines.conditioning import NarrativeContexts, condition_mask, place_image


def test_place_image_puts_each_image_at_its_own_frame():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4) + 1
    video = place_image(images, [1, 9], 9)
    assert video.shape == (2, 3, 9, 4, 4)
    assert torch.equal(video[0, :, 0], images[0]) and torch.equal(video[1, :, 8], images[1])
    assert video[0, :, 1:].abs().sum() == 0 and video[1, :, :8].abs().sum() == 0


def test_condition_mask_matches_diffusers_for_a_first_frame():
    # what WanImageToVideoPipeline.prepare_latents builds for 17 frames, written out by hand
    expected = torch.zeros(1, 4, 5, 2, 2)
    expected[:, :, 0] = 1
    assert torch.equal(condition_mask([1], 17, 2, 2), expected)


@pytest.mark.parametrize("position, latent, channel", [(2, 1, 0), (5, 1, 3), (6, 2, 0), (17, 4, 3)])
def test_condition_mask_marks_exactly_one_pixel_frame(position, latent, channel):
    mask = condition_mask([position], 17, 2, 3, predicted_value=0.0)
    assert mask.shape == (1, 4, 5, 2, 3)
    assert mask[0, channel, latent].eq(1).all() and mask.sum() == 6


def test_condition_mask_predicted_value_and_batches():
    mask = condition_mask([1, 17], 17, 1, 1, predicted_value=0.5)
    assert mask[0, :, 0].eq(1).all() and mask[0, :, 1:].eq(0.5).all()
    assert mask[1, 3, 4].eq(1).all() and mask[1].eq(0.5).sum() == 4 * 5 - 1


def test_positions_out_of_range_are_rejected():
    with pytest.raises(ValueError, match="outside"):
        condition_mask([18], 17, 1, 1)
    with pytest.raises(ValueError, match="outside"):
        place_image(torch.zeros(1, 3, 2, 2), [0], 17)


def test_narrative_contexts_encode_each_description_once():
    a, b = "intact vase", "cat breaks vase"
    latent = [(a,), (a, a, a, a), (a, a, b, b), (b, b, b, b), (b, b, a, a)]
    contexts = NarrativeContexts.from_latent_descriptions(latent)
    assert contexts.texts == [a, b]
    # {a} alone and {a x4} are one context; a half-half mixture in either order is one more
    assert contexts.frame_to_context == [0, 0, 1, 2, 1]
    embeds = torch.randn(2, 3, 4)
    out = contexts.embed(embeds)
    assert out.shape == (3, 3, 4)
    assert torch.equal(out[0], embeds[0]) and torch.equal(out[2], embeds[1])
    torch.testing.assert_close(out[1], (embeds[0] + embeds[1]) / 2)


def test_uneven_mixtures_are_weighted_by_frames():
    contexts = NarrativeContexts.from_latent_descriptions([("x",), ("x", "y", "y", "y")])
    embeds = torch.randn(2, 1, 2)
    torch.testing.assert_close(contexts.embed(embeds)[1], (embeds[0] + 3 * embeds[1]) / 4)
