"""Frame-wise text on LTX-Video 0.9.x: each latent frame's tokens cross-attend to their own narrative.

LTX's cross-attention (`LTXVideoAttnProcessor` on every block's `attn2`) reads one T5 text with a padding bias.
Here the text holds U narratives of `context_len` tokens each, concatenated, and an additive bias lets each video
token see only its own narrative's keys (plus LTX's own padding bias). Which narrative a token reads comes from
`token_context`, built by the backend from LTX's token order: a keyframe away from frame 0 is prepended as one
latent frame of extra tokens (it reads the narrative of the latent frame holding its pixel frame), then the video
grid, frame-major. Narratives are built as ReasonDiff builds them (`conditioning.NarrativeContexts`: each distinct
text once; a latent frame straddling a change of text reads the frame-weighted mean), grouped by LTX's own
temporal compression. The negative prompt is repeated U times, so its row sees one text everywhere. Without a
layout the processor is LTX's stock one. Not supported: context parallelism (the bias assumes whole sequences).
"""

from __future__ import annotations

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_ltx import LTXVideoAttnProcessor, apply_rotary_emb

from ...conditioning import NarrativeContexts
from ...frames import group_by_latent_frame
from ...models.attention import FrameLayoutState
from .ltx2 import latent_index


class TokenLayout:
    """Which of the U narratives (`context_len` tokens each) every video token reads: `token_context` `[S]`."""

    def __init__(self, token_context: torch.Tensor, context_len: int):
        self.token_context, self.context_len = token_context, context_len

    def bias(self, keys: int, dtype, device) -> torch.Tensor:
        """`[S, keys]` additive bias: 0 on the token's own narrative, -10000 (LTX's padding value) elsewhere."""
        if keys % self.context_len:
            raise ValueError(f"{keys} text tokens are not a whole number of {self.context_len}-token narratives")
        key_context = torch.arange(keys, device=device) // self.context_len
        blocked = self.token_context.to(device)[:, None] != key_context[None, :]
        return torch.zeros(blocked.shape, dtype=dtype, device=device).masked_fill(blocked, -10000.0)


class FrameWiseLTXAttnProcessor:
    """`LTXVideoAttnProcessor` with each token's keys restricted to its narrative (see the module docstring)."""

    _attention_backend = None
    _parallel_config = None

    def __init__(self, state: FrameLayoutState):
        self.state = state
        self.stock = LTXVideoAttnProcessor()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None):
        layout = self.state.layout
        if layout is None or encoder_hidden_states is None:
            self.stock._attention_backend = self._attention_backend
            self.stock._parallel_config = self._parallel_config
            return self.stock(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        batch, seq_len, _ = hidden_states.shape
        keys = encoder_hidden_states.shape[1]
        if layout.token_context.shape[0] != seq_len:
            raise ValueError(f"the text layout is for {layout.token_context.shape[0]} video tokens, the call has "
                             f"{seq_len}")
        bias = layout.bias(keys, hidden_states.dtype, hidden_states.device)[None, None]  # [1, 1, S, keys]
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, keys, batch)
            # the same padding bias for every head: keep one, so the sum stays [B, 1, S, keys], not [B, H, S, keys]
            bias = bias + attention_mask.view(batch, attn.heads, -1, keys)[:, :1]
        query = attn.norm_q(attn.to_q(hidden_states)).unflatten(2, (attn.heads, -1))
        key = attn.norm_k(attn.to_k(encoder_hidden_states)).unflatten(2, (attn.heads, -1))
        value = attn.to_v(encoder_hidden_states).unflatten(2, (attn.heads, -1))
        hidden_states = dispatch_attention_fn(query, key, value, attn_mask=bias, dropout_p=0.0, is_causal=False,
                                              backend=self._attention_backend)
        hidden_states = hidden_states.flatten(2, 3).to(query.dtype)
        return attn.to_out[1](attn.to_out[0](hidden_states))


def install_ltx_framewise(transformer, state: FrameLayoutState) -> None:
    """A `FrameWiseLTXAttnProcessor` reading `state` on every block's cross-attention."""
    for block in transformer.transformer_blocks:
        processor = FrameWiseLTXAttnProcessor(state)
        processor._attention_backend = getattr(block.attn2.processor, "_attention_backend", None)
        block.attn2.set_processor(processor)


@torch.no_grad()
def ltx_frame_contexts(pipe, frame_prompts: list[str], image_frame_index: int, height: int, width: int,
                       max_sequence_length: int):
    """`(prompt_embeds [1, U*L, D], prompt_attention_mask [1, U*L], TokenLayout)` for one video."""
    temporal = pipe.vae_temporal_compression_ratio
    texts = list(dict.fromkeys(frame_prompts))
    stories = NarrativeContexts.from_latent_descriptions(
        group_by_latent_frame([texts.index(t) for t in frame_prompts], temporal))
    embeds, masks, *_ = pipe.encode_prompt(prompt=texts, do_classifier_free_guidance=False,
                                           max_sequence_length=max_sequence_length, device=pipe._execution_device)
    contexts = stories.embed(embeds)  # [U, L, D]
    lengths = stories.lengths(masks.sum(dim=1))
    mask = (torch.arange(max_sequence_length, device=masks.device)[None] < lengths[:, None]).to(masks.dtype)
    if pipe.transformer_temporal_patch_size != 1:
        raise ValueError("frame-wise text on LTX needs a transformer with patch_size_t=1 (LTX-Video 0.9.x's)")
    cell = pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size
    per_frame = (height // cell) * (width // cell)  # tokens per latent frame
    frames = torch.tensor(stories.frame_to_context).repeat_interleave(per_frame)
    if image_frame_index > 0:  # LTX prepends the keyframe's tokens (one latent frame) before the grid
        keyframe = stories.frame_to_context[latent_index(image_frame_index, temporal)]
        frames = torch.cat([torch.full((per_frame,), keyframe), frames])
    layout = TokenLayout(frames, max_sequence_length)
    return contexts.flatten(0, 1)[None], mask.flatten()[None], layout


@torch.no_grad()
def repeated_negative(pipe, negative_prompt: str | None, copies: int, max_sequence_length: int):
    """The negative prompt's embeddings and mask repeated `copies` times along the text, to the positive side's
    length (LTX stacks both sides in one batch): every token of the negative row then reads the same text."""
    embeds, mask, *_ = pipe.encode_prompt(prompt=negative_prompt or "", do_classifier_free_guidance=False,
                                          max_sequence_length=max_sequence_length, device=pipe._execution_device)
    return embeds.repeat(1, copies, 1), mask.repeat(1, copies)
