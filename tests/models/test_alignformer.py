import pytest
import torch
import torch.nn.functional as F
from helpers import trained_like_alignformer as trained_like

from reasondiff import AlignFormer
from reasondiff.models import tiny_wan

B, C, H, W, FRAMES, L, D = 3, 16, 8, 8, 5, 6, tiny_wan.TEXT_DIM


def make_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    anchor = torch.randn(B, C, H, W, generator=g)
    index = torch.tensor([0, 2, 4])  # first, middle and last latent frame in one batch
    narratives = torch.randn(B, FRAMES, L, D, generator=g)
    mask = torch.ones(B, FRAMES, L, dtype=torch.bool)
    mask[0, :, 3:] = False  # sample 0: short narratives
    mask[2, 1, 2:] = False  # sample 2: one frame shorter than the others
    return anchor, index, narratives, mask



def test_output_shape_and_finite():
    out = trained_like()(*make_inputs())
    assert out.shape == (B, C, FRAMES, H, W)
    assert torch.isfinite(out).all()


def test_anchor_frame_is_the_input_latent_bit_for_bit():
    anchor, index, narratives, mask = make_inputs()
    out = trained_like()(anchor, index, narratives, mask)
    for b in range(B):
        assert torch.equal(out[b, :, index[b]], anchor[b])
        others = [k for k in range(FRAMES) if k != index[b]]
        assert not torch.allclose(out[b, :, others], anchor[b, :, None].expand(-1, len(others), -1, -1))


def test_untrained_model_returns_the_repeated_anchor():
    anchor, index, narratives, mask = make_inputs()
    out = tiny_wan.alignformer(seed=0)(anchor, index, narratives, mask)
    assert torch.equal(out, anchor[:, :, None].expand(-1, -1, FRAMES, -1, -1))


def test_frame_k_narrative_steers_frame_k_and_never_the_anchor():
    model = trained_like()
    anchor, index, narratives, mask = make_inputs()
    before = model(anchor, index, narratives, mask)
    for b, k in [(0, 3), (1, 4), (2, 0)]:
        changed = narratives.clone()
        changed[b, k] += 2.0
        after = model(anchor, index, changed, mask)
        assert not torch.allclose(after[b, :, k], before[b, :, k], atol=1e-4), (b, k)
        assert torch.equal(after[b, :, index[b]], anchor[b])
        other = [s for s in range(B) if s != b]
        torch.testing.assert_close(after[other], before[other])  # no leakage across the batch


def test_the_anchor_index_tells_frames_their_distance_from_the_anchor():
    """Same anchor, same narrative everywhere: only the anchor's position differs, and it must matter."""
    model = trained_like()
    anchor, _, narratives, mask = make_inputs()
    narratives = narratives[:, :1].expand(-1, FRAMES, -1, -1)
    first = model(anchor, torch.zeros(B, dtype=torch.long), narratives, mask)
    last = model(anchor, torch.full((B,), FRAMES - 1), narratives, mask)
    middle = slice(1, FRAMES - 1)  # predicted in both calls
    assert (first[:, :, middle] - last[:, :, middle]).abs().amax() > 1e-3


def test_anchor_frame_narrative_cannot_change_the_anchor():
    model = trained_like()
    anchor, index, narratives, mask = make_inputs()
    changed = narratives.clone()
    for b in range(B):
        changed[b, index[b]] = torch.randn(L, D)
    out = model(anchor, index, changed, mask)
    for b in range(B):
        assert torch.equal(out[b, :, index[b]], anchor[b])


def test_padded_narrative_tokens_are_ignored():
    model = trained_like()
    anchor, index, narratives, mask = make_inputs()
    before = model(anchor, index, narratives, mask)
    garbage = torch.where(mask[..., None], narratives, torch.randn_like(narratives) * 10)
    after = model(anchor, index, garbage, mask)
    torch.testing.assert_close(after, before)
    # and the mask matters: without it the garbage does change the output
    assert not torch.allclose(model(anchor, index, garbage, None), before, atol=1e-4)


def test_a_frame_without_narrative_tokens_stays_finite():
    anchor, index, narratives, mask = make_inputs()
    mask[1, 2] = False
    assert torch.isfinite(trained_like()(anchor, index, narratives, mask)).all()


def test_batched_equals_one_sample_at_a_time():
    model = trained_like()
    anchor, index, narratives, mask = make_inputs()
    batched = model(anchor, index, narratives, mask)
    for b in range(B):
        single = model(anchor[b : b + 1], index[b : b + 1], narratives[b : b + 1], mask[b : b + 1])
        torch.testing.assert_close(single, batched[b : b + 1], atol=1e-5, rtol=1e-5)


def test_gradients_reach_every_parameter_after_the_output_projection_moves():
    model = tiny_wan.alignformer(seed=0)
    anchor, index, narratives, mask = make_inputs()
    target = torch.randn(B, C, FRAMES, H, W)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    F.mse_loss(model(anchor, index, narratives, mask), target).backward()
    # zero-initialised output: at step 0 only the output projection can receive gradient
    nonzero = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert nonzero == {"proj_out.weight", "proj_out.bias"}
    opt.step()
    opt.zero_grad()

    F.mse_loss(model(anchor, index, narratives, mask), target).backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert unused == []


def test_save_and_load_round_trip(tmp_path):
    model = trained_like()
    inputs = make_inputs()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))
    loaded = AlignFormer.from_pretrained(tmp_path).eval()
    public = lambda config: {k: v for k, v in config.items() if not k.startswith("_")}  # noqa: E731
    assert public(loaded.config) == public(model.config)
    assert torch.equal(loaded(*inputs), model(*inputs))


def test_gradient_checkpointing_gives_the_same_values_and_gradients():
    inputs = make_inputs()
    results = []
    for checkpointing in (False, True):
        model = trained_like().train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        assert model.gradient_checkpointing is checkpointing
        out = model(*inputs)
        out.square().mean().backward()
        results.append((out.detach(), model.cross_blocks[0].attn.to_q.weight.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def test_real_size_config_matches_wan_2_1():
    model = AlignFormer()
    assert model.config.in_channels == 16 and model.config.text_dim == 4096
    assert model.config.num_heads == 8 and model.config.num_cross_stages == 2


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a, i, h, m: (a[:, :4], i, h, m), "anchor_latent"),
        (lambda a, i, h, m: (a[..., :7], i, h, m), "divisible"),
        (lambda a, i, h, m: (a, torch.tensor([0, 2, 5]), h, m), "anchor_index"),
        (lambda a, i, h, m: (a, i.float(), h, m), "anchor_index"),
        (lambda a, i, h, m: (a, i[:2], h, m), "anchor_index"),
        (lambda a, i, h, m: (a, i, h[..., :8], m), "narrative_embeds"),
        (lambda a, i, h, m: (a, i, h, m[:, :, :2]), "narrative_mask"),
    ],
)
def test_bad_inputs_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        tiny_wan.alignformer()(*change(*make_inputs()))


def test_learns_narrative_dependent_latents_on_a_toy_task():
    """Stage 2 asks the AlignFormer to predict each frame's latent from the anchor and that frame's narrative.

    Toy world: K words, each shifting the latent channels by its own vector; frame k's target is the
    anchor shifted by the vector of frame k's word. Padding tokens hold noise and are masked.
    """
    torch.manual_seed(0)
    model = tiny_wan.alignformer(seed=0)
    num_words, batch = 6, 8
    word_embeds = torch.randn(num_words, D)
    word_shifts = torch.randn(num_words, C)

    def sample(generator):
        anchor = torch.randn(batch, C, H, W, generator=generator)
        index = torch.randint(0, FRAMES, (batch,), generator=generator)
        words = torch.randint(0, num_words, (batch, FRAMES), generator=generator)
        narratives = torch.randn(batch, FRAMES, 3, D, generator=generator)
        narratives[:, :, 0] = word_embeds[words]
        mask = torch.zeros(batch, FRAMES, 3, dtype=torch.bool)
        mask[:, :, 0] = True
        target = anchor[:, :, None] + word_shifts[words].permute(0, 2, 1)[..., None, None]
        is_anchor = (torch.arange(FRAMES)[None] == index[:, None])[:, None, :, None, None]
        target = torch.where(is_anchor, anchor[:, :, None], target)
        return (anchor, index, narratives, mask), target

    held_out, held_out_target = sample(torch.Generator().manual_seed(123))
    with torch.no_grad():
        initial = F.mse_loss(model(*held_out), held_out_target).item()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(1)
    for _ in range(100):
        inputs, target = sample(g)
        loss = F.mse_loss(model(*inputs), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = F.mse_loss(model(*held_out), held_out_target).item()
    assert final < initial / 10, (initial, final)
