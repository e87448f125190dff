import pytest
import torch

from reasondiff.conditioning import NarrativeContexts, condition_mask, place_image


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


def test_encode_texts_is_wans_own_encode_prompt_bit_for_bit(wan_components):
    """Called with the tokenizer and encoder directly (no private method, no stand-in `self`), and still equal to
    the public `WanImageToVideoPipeline.encode_prompt`, lengths included."""
    from diffusers import WanImageToVideoPipeline

    from reasondiff.conditioning import encode_texts

    texts = ["a cat walks  toward the vase", "it breaks", "a much longer sentence about a kitchen at night"]
    pipe = WanImageToVideoPipeline(**wan_components)
    want, _ = pipe.encode_prompt(texts, do_classifier_free_guidance=False, max_sequence_length=64, device="cpu")
    got, lengths = encode_texts(wan_components["tokenizer"], wan_components["text_encoder"], texts, 64,
                                device="cpu", return_lengths=True)
    assert torch.equal(got, want)
    assert lengths.tolist() == want.ne(0).any(-1).sum(-1).tolist()  # the tokens before Wan's zero padding
    assert len(set(lengths.tolist())) == 3


def test_encode_images_is_wans_own_encode_image(wan_components, condition_image):
    from diffusers import WanImageToVideoPipeline

    from reasondiff.conditioning import encode_images

    pipe = WanImageToVideoPipeline(**wan_components)
    got = encode_images(wan_components["image_encoder"], wan_components["image_processor"], [condition_image], "cpu")
    assert torch.equal(got, pipe.encode_image([condition_image], "cpu"))


def test_the_token_mask_from_carried_lengths_is_the_one_read_off_the_padding():
    from reasondiff.conditioning import frame_contexts, narratives_per_frame, padded_lengths, token_mask

    lengths = torch.tensor([[3, 5, 2]])
    embeds = torch.randn(1, 3, 6, 4) * (torch.arange(6)[None, None, :, None] < lengths[..., None, None])
    caption_index = torch.tensor([[0] * 5 + [1] * 6 + [2] * 6])  # latent frame 3 mixes captions 1 (5 tokens) and 2
    contexts, frame_to_context, context_lengths = frame_contexts(embeds, lengths, caption_index)
    narratives, from_lengths = narratives_per_frame(contexts, frame_to_context, context_lengths)
    assert torch.equal(from_lengths, narratives.ne(0).any(-1))
    assert torch.equal(from_lengths, token_mask(padded_lengths(narratives), narratives.shape[2]))
    assert from_lengths.sum(-1).tolist() == [[3, 3, 5, 5, 2]]  # the mixed frame reaches as far as its longer text


def test_pad_to_pads_with_zeros_and_leaves_long_enough_tensors_alone():
    from reasondiff.conditioning import pad_to

    x = torch.ones(2, 3)
    assert torch.equal(pad_to(x, 4), torch.cat([x, torch.zeros(2, 3)]))
    assert torch.equal(pad_to(x, 5, dim=1), torch.cat([x, torch.zeros(2, 2)], dim=1))
    assert pad_to(x, 2) is x
