import pytest
import torch
from diffusers.models.transformers.transformer_wan import WanAttnProcessor

from reasondiff.models import tiny_wan
from reasondiff.models.attention import FrameLayout, FrameWiseWanAttnProcessor, install_framewise_attention

FRAMES, TOKENS_PER_FRAME, CONTEXT_LEN, IMAGE_LEN = 5, 16, 512, 17


def transformer_and_inputs(seed=0):
    torch.manual_seed(seed)
    transformer = tiny_wan.wan_components(seed=seed)["transformer"]
    hidden = torch.randn(1, 36, FRAMES, 8, 8)
    timestep = torch.tensor([700.0])
    image = torch.randn(1, IMAGE_LEN, tiny_wan.IMAGE_DIM)
    contexts = torch.randn(FRAMES, CONTEXT_LEN, tiny_wan.TEXT_DIM)  # a different narrative for each latent frame
    return transformer, hidden, timestep, image, contexts


def first_cross_attention_output(transformer, hidden, timestep, text, image):
    captured = []
    handle = transformer.blocks[0].attn2.register_forward_hook(lambda m, a, out: captured.append(out.detach()))
    with torch.no_grad():
        transformer(hidden, timestep, text, image, return_dict=False)
    handle.remove()
    return captured[0]  # [1, F * tokens_per_frame, inner_dim]


def test_frame_k_narrative_changes_frame_k_tokens_only():
    transformer, hidden, timestep, image, contexts = transformer_and_inputs()
    state = install_framewise_attention(transformer)
    layout = FrameLayout(torch.arange(FRAMES)[None], image_len=IMAGE_LEN, context_len=CONTEXT_LEN)
    with state.use(layout):
        before = first_cross_attention_output(transformer, hidden, timestep, contexts.reshape(1, -1, tiny_wan.TEXT_DIM), image)
        for k in range(FRAMES):
            changed = contexts.clone()
            changed[k] += 1.0
            after = first_cross_attention_output(transformer, hidden, timestep, changed.reshape(1, -1, tiny_wan.TEXT_DIM), image)
            delta = (after - before).abs().reshape(FRAMES, TOKENS_PER_FRAME, -1).amax(dim=(1, 2))
            assert delta[k] > 1e-3
            assert torch.all(delta[torch.arange(FRAMES) != k] == 0), (k, delta)


def test_shared_narrative_equals_stock_wan_attention():
    """Every frame reading copies of one narrative must equal Wan's processor attending to that narrative."""
    transformer, hidden, timestep, image, contexts = transformer_and_inputs()
    one = contexts[:1]
    stock = transformer(hidden, timestep, one, image, return_dict=False)[0]
    state = install_framewise_attention(transformer)
    for num_copies, frame_to_context in [(1, torch.zeros(1, FRAMES, dtype=torch.long)),
                                         (3, torch.tensor([[0, 1, 2, 1, 0]]))]:
        text = one.repeat(num_copies, 1, 1).reshape(1, -1, tiny_wan.TEXT_DIM)
        with state.use(FrameLayout(frame_to_context, IMAGE_LEN, CONTEXT_LEN)), torch.no_grad():
            framewise = transformer(hidden, timestep, text, image, return_dict=False)[0]
        torch.testing.assert_close(framewise, stock, atol=1e-5, rtol=1e-5)


def test_without_a_layout_the_processor_is_the_stock_one():
    transformer, hidden, timestep, image, contexts = transformer_and_inputs()
    with torch.no_grad():
        stock = transformer(hidden, timestep, contexts[:1], image, return_dict=False)[0]
        install_framewise_attention(transformer)
        assert transformer.blocks[0].attn2.processor.state.layout is None
        ours = transformer(hidden, timestep, contexts[:1], image, return_dict=False)[0]
    assert torch.equal(ours, stock)


def test_install_is_idempotent_and_leaves_self_attention_alone():
    transformer = tiny_wan.wan_components()["transformer"]
    state = install_framewise_attention(transformer)
    assert install_framewise_attention(transformer) is state
    assert all(isinstance(b.attn2.processor, FrameWiseWanAttnProcessor) for b in transformer.blocks)
    assert all(isinstance(b.attn1.processor, WanAttnProcessor) for b in transformer.blocks)
    transformer.set_attn_processor(WanAttnProcessor())  # a user resets the processors
    assert install_framewise_attention(transformer) is not state


def test_layout_state_restores_the_previous_layout():
    state = install_framewise_attention(tiny_wan.wan_components()["transformer"])
    layout = FrameLayout(torch.zeros(1, FRAMES, dtype=torch.long), IMAGE_LEN, CONTEXT_LEN)
    with pytest.raises(RuntimeError):
        with state.use(layout):
            assert state.layout is layout
            raise RuntimeError
    assert state.layout is None


def test_text_that_is_not_whole_narratives_is_rejected():
    transformer, hidden, timestep, image, contexts = transformer_and_inputs()
    state = install_framewise_attention(transformer)
    with state.use(FrameLayout(torch.arange(FRAMES)[None], IMAGE_LEN, CONTEXT_LEN)), pytest.raises(ValueError, match="whole"):
        transformer(hidden, timestep, contexts.reshape(1, -1, tiny_wan.TEXT_DIM)[:, :-3], image)


class _Mesh:
    """The two DeviceMesh calls the processor makes, for rank `rank` of `size` context-parallel ranks."""

    def __init__(self, rank, size):
        self.rank, self.world = rank, size

    def get_local_rank(self):
        return self.rank

    def size(self):
        return self.world


def _parallel_config(rank, size):
    from types import SimpleNamespace

    return SimpleNamespace(context_parallel_config=SimpleNamespace(_flattened_mesh=_Mesh(rank, size)))


@pytest.mark.parametrize("ranks", [2, 4, 5, 8])  # 80 video tokens: chunks of 40, 20, 16 (whole frames), 10
def test_context_parallel_chunks_give_the_same_attention_as_the_whole_sequence(ranks):
    """diffusers' context parallelism hands each rank an equal contiguous chunk of the video tokens and the whole
    text; chunk by chunk, the frame-wise processor must reproduce the unsplit result, also where a chunk starts or
    ends inside a frame. (One process: gloo offers no attention backend diffusers runs context-parallel.)"""
    torch.manual_seed(0)
    attn = tiny_wan.wan_components(seed=0)["transformer"].blocks[0].attn2
    inner = attn.to_q.in_features
    hidden = torch.randn(1, FRAMES * TOKENS_PER_FRAME, inner)
    text = torch.randn(1, IMAGE_LEN + 3 * CONTEXT_LEN, inner)  # 3 narratives, read by frames as below
    layout = FrameLayout(torch.tensor([[0, 2, 1, 1, 2]]), IMAGE_LEN, CONTEXT_LEN)
    processor = FrameWiseWanAttnProcessor(state := install_framewise_attention(tiny_wan.wan_components()["transformer"]))
    with state.use(layout), torch.no_grad():
        whole = processor(attn, hidden, text)
        parts = []
        for rank, chunk in enumerate(hidden.chunk(ranks, dim=1)):
            processor._parallel_config = _parallel_config(rank, ranks)
            parts.append(processor(attn, chunk, text))
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, atol=1e-6, rtol=1e-6)
    processor._parallel_config = None
    with state.use(layout), torch.no_grad():  # the control: a chunk read as if it were the whole video differs
        assert not torch.allclose(processor(attn, hidden[:, :40], text), whole[:, :40], atol=1e-3)


def test_install_keeps_the_backend_and_parallel_config_already_set():
    transformer = tiny_wan.wan_components(seed=0)["transformer"]
    config = _parallel_config(0, 2)
    for block in transformer.blocks:
        block.attn2.processor._parallel_config = config  # as enable_parallelism leaves it
    install_framewise_attention(transformer)
    assert all(block.attn2.processor._parallel_config is config for block in transformer.blocks)
