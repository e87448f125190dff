"""Frame-wise text on Wan VACE: ReasonDiff's frame-wise cross-attention (`models/attention.py`) on the VACE DiT.

VACE's transformer is Wan's: its main blocks and its VACE (control) blocks cross-attend with diffusers'
`WanAttention` to the text alone (no CLIP image tokens), over video tokens in frame-major order, control tokens
laid out as the video's. So the processor ReasonDiff's Wan pipeline uses applies unchanged: installed on every
main and VACE block's `attn2`, it lets latent frame k's tokens attend to narrative k only. Narratives are built
as the ReasonDiff pipeline and trainer build them (`conditioning.frame_contexts`: each distinct text encoded
once with Wan's UMT5 code; a latent frame straddling a change of text reads the frame-weighted mean). Without a
layout the processor is the stock one, so plain calls stay diffusers' own bit for bit.
"""

from __future__ import annotations

import torch

from ...conditioning import encode_texts, frame_contexts
from ...models.attention import FrameLayout, FrameLayoutState, FrameWiseWanAttnProcessor


def install_vace_framewise(transformer, state: FrameLayoutState) -> None:
    """A `FrameWiseWanAttnProcessor` reading `state` on every main and VACE block's cross-attention."""
    for block in [*transformer.blocks, *transformer.vace_blocks]:
        processor = FrameWiseWanAttnProcessor(state)
        processor._attention_backend = getattr(block.attn2.processor, "_attention_backend", None)
        processor._parallel_config = getattr(block.attn2.processor, "_parallel_config", None)
        block.attn2.set_processor(processor)


@torch.no_grad()  # as the pipeline's own encoding: embeddings that need no grad (and get the same kernels)
def vace_frame_contexts(pipe, frame_prompts: list[str],
                        max_sequence_length: int) -> tuple[torch.Tensor, FrameLayout | None]:
    """`prompt_embeds` `[1, U*L, D]` (the U distinct narratives, concatenated) and the layout saying which one each
    latent frame reads; None when every frame reads the same one (U = 1): that is the stock attention, so the
    stock processor runs it and a one-text script is diffusers' call with that prompt, bit for bit."""
    device = pipe._execution_device
    texts = list(dict.fromkeys(frame_prompts))
    embeds, lengths = encode_texts(pipe.tokenizer, pipe.text_encoder, texts, max_sequence_length, device=device,
                                   return_lengths=True)
    caption_index = torch.tensor([[texts.index(t) for t in frame_prompts]], device=device)
    contexts, frame_to_context, _ = frame_contexts(embeds[None], lengths[None], caption_index)
    layout = FrameLayout(frame_to_context, image_len=0, context_len=max_sequence_length)
    return contexts.flatten(1, 2), layout if contexts.shape[1] > 1 else None
