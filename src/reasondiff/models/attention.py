"""Frame-wise text cross-attention for diffusers' Wan DiT.

Wan's stock cross-attention lets every video token attend to one prompt. ReasonDiff gives each
latent frame its own narrative, so the tokens of latent frame k (frame-major order: token index
// (h/2 * w/2)) must attend to narrative k only. The CLIP image tokens stay shared by all frames.

The processor is installed on every block's `attn2` and reads a `FrameLayout` from a state object
the pipeline (or the trainer) sets around each transformer call. Without a layout it *is* the stock
processor, so a transformer carrying it still behaves exactly like Wan's for plain Wan calls.

Context parallelism (diffusers' `enable_parallelism(config=ContextParallelConfig(...))`) splits the
video tokens into equal contiguous chunks, one per rank, and leaves the text whole. diffusers sets
`_parallel_config` on every processor; this one reads it to know where its chunk starts, so a rank
whose chunk begins or ends inside a frame still gives each token its own frame's narrative.

The text part of `encoder_hidden_states` holds U narrative contexts of `context_len` tokens each,
concatenated; `frame_to_context[b, k]` says which context latent frame k reads. Identical
narratives are stored once and gathered per frame, so K/V projections cost U contexts, not F.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_wan import (
    WanAttnProcessor,
    _get_added_kv_projections,
    _get_qkv_projections,
)


@dataclass
class FrameLayout:
    """Which narrative context each latent frame reads in the text part of the cross-attention."""

    frame_to_context: torch.Tensor  # [B, F] long, values in 0..U-1
    image_len: int  # number of CLIP image tokens in front of the text (257 for Wan2.1's ViT-H/14)
    context_len: int  # tokens per narrative context (the text encoder's max_sequence_length, 512 in Wan)


class FrameLayoutState:
    """Shared, mutable holder of the current layout; one per transformer, read by all its processors."""

    def __init__(self):
        self.layout: FrameLayout | None = None

    @contextmanager
    def use(self, layout: FrameLayout | None):
        previous, self.layout = self.layout, layout
        try:
            yield
        finally:
            self.layout = previous


class FrameWiseWanAttnProcessor:
    """Wan I2V cross-attention with per-latent-frame text contexts (see module docstring)."""

    _attention_backend = None
    _parallel_config = None

    def __init__(self, state: FrameLayoutState):
        self.state = state
        self.stock = WanAttnProcessor()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        layout = self.state.layout
        if layout is None or encoder_hidden_states is None:
            self.stock._attention_backend = self._attention_backend
            self.stock._parallel_config = self._parallel_config
            return self.stock(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)

        image_context = encoder_hidden_states[:, : layout.image_len] if attn.add_k_proj is not None else None
        text_context = encoder_hidden_states[:, layout.image_len :] if attn.add_k_proj is not None else encoder_hidden_states
        num_contexts, remainder = divmod(text_context.shape[1], layout.context_len)
        if remainder or num_contexts < 1:
            raise ValueError(
                f"text context of {text_context.shape[1]} tokens is not a whole number of {layout.context_len}-token narratives"
            )

        query, key, value = _get_qkv_projections(attn, hidden_states, text_context)
        query = attn.norm_q(query).unflatten(2, (attn.heads, -1))  # [B, S, H, d]
        key = attn.norm_k(key).unflatten(2, (attn.heads, -1))  # [B, U*L, H, d]
        value = value.unflatten(2, (attn.heads, -1))

        hidden_states_img = None
        if image_context is not None:
            key_img, value_img = _get_added_kv_projections(attn, image_context)
            key_img = attn.norm_added_k(key_img).unflatten(2, (attn.heads, -1))
            value_img = value_img.unflatten(2, (attn.heads, -1))
            hidden_states_img = dispatch_attention_fn(
                query, key_img, value_img, attn_mask=None, dropout_p=0.0, is_causal=False,
                backend=self._attention_backend,
            ).flatten(2, 3).type_as(query)

        if num_contexts == 1:  # one narrative for every frame (e.g. the negative prompt): stock attention
            hidden_states = dispatch_attention_fn(
                query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, backend=self._attention_backend
            )
        else:
            offset, total = self._token_range(query.shape[1])
            hidden_states = self._framewise(query, key, value, layout.frame_to_context, num_contexts,
                                            layout.context_len, offset, total)
        hidden_states = hidden_states.flatten(2, 3).type_as(query)

        if hidden_states_img is not None:
            hidden_states = hidden_states + hidden_states_img
        hidden_states = attn.to_out[0](hidden_states)
        return attn.to_out[1](hidden_states)

    def _token_range(self, local_len: int) -> tuple[int, int]:
        """(first token index, total video tokens) of this rank's chunk under context parallelism, else (0, local)."""
        cp = getattr(self._parallel_config, "context_parallel_config", None)
        mesh = getattr(cp, "_flattened_mesh", None)
        if mesh is None or mesh.size() == 1:
            return 0, local_len
        return mesh.get_local_rank() * local_len, mesh.size() * local_len  # diffusers' equal chunks, rank order

    def _framewise(self, query, key, value, frame_to_context, num_contexts, context_len, offset=0, total=None):
        """Attention of video tokens offset..offset+S-1 (of `total`) to their frames' contexts. The chunk is padded
        to whole frames so every frame's tokens attend together, then the padding is cut off again."""
        batch, seq_len, heads, head_dim = query.shape
        total = seq_len if total is None else total
        if total % frame_to_context.shape[1]:
            raise ValueError(f"{total} video tokens cannot be split into {frame_to_context.shape[1]} latent frames")
        tokens_per_frame = total // frame_to_context.shape[1]
        if frame_to_context.shape[0] != batch:
            raise ValueError(f"frame layout is for batch {frame_to_context.shape[0]}, the call has batch {batch}")
        first, last = offset // tokens_per_frame, (offset + seq_len - 1) // tokens_per_frame
        lead, num_frames = offset - first * tokens_per_frame, last - first + 1
        trail = num_frames * tokens_per_frame - lead - seq_len
        frame_to_context = frame_to_context[:, first : last + 1]

        def per_frame(x):  # [B, U*L, H, d] -> [B*F, L, H, d], frame k gets its context
            x = x.view(batch, num_contexts, context_len, heads, head_dim)
            index = frame_to_context.to(x.device)[:, :, None, None, None].expand(-1, -1, context_len, heads, head_dim)
            return torch.gather(x, 1, index).reshape(batch * num_frames, context_len, heads, head_dim)

        query = torch.nn.functional.pad(query, (0, 0, 0, 0, lead, trail))
        query = query.reshape(batch * num_frames, tokens_per_frame, heads, head_dim)
        out = dispatch_attention_fn(
            query, per_frame(key), per_frame(value), attn_mask=None, dropout_p=0.0, is_causal=False,
            backend=self._attention_backend,
        )
        return out.reshape(batch, num_frames * tokens_per_frame, heads, head_dim)[:, lead : lead + seq_len]


def install_framewise_attention(transformer) -> FrameLayoutState:
    """Put a `FrameWiseWanAttnProcessor` on every block's cross-attention (idempotent); return their shared state."""
    current = transformer.blocks[0].attn2.processor
    if isinstance(current, FrameWiseWanAttnProcessor) and all(
        getattr(block.attn2.processor, "state", None) is current.state for block in transformer.blocks
    ):
        return current.state
    state = FrameLayoutState()
    for block in transformer.blocks:
        processor = FrameWiseWanAttnProcessor(state)
        # keep what set_attention_backend / enable_parallelism recorded on the processor being replaced
        processor._attention_backend = getattr(block.attn2.processor, "_attention_backend", None)
        processor._parallel_config = getattr(block.attn2.processor, "_parallel_config", None)
        block.attn2.set_processor(processor)
    return state
