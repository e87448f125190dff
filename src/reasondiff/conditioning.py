"""How ReasonDiff conditions Wan2.1-I2V: one implementation, shared by the pipeline, the cache and the trainer.

This module is a layer of its own, below `pipelines`, `data` and `training` (it imports only `frames`, torch and
the text/image encoders it is handed), so the training cache does not depend on the pipeline.

Wan I2V feeds its DiT `cat[noisy latents (16), mask (4), condition (16)]`. The condition is the VAE
latent of a video that holds the image and zeros elsewhere; the mask's 4 channels are the 4 pixel
frames packed into each latent frame (latent frame 0 holds one pixel frame, repeated 4 times).
Diffusers builds this for a first (and last) frame; here the image may sit at any pixel frame j,
and the condition channels of the other latent frames can carry the AlignFormer's c*.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .frames import TEMPORAL_COMPRESSION, check_num_frames, group_by_latent_frame, pixel_to_latent_index


def place_image(image: torch.Tensor, positions: Sequence[int], num_frames: int) -> torch.Tensor:
    """A zero video `[B, C, num_frames, H, W]` holding `image[b]` at 1-based pixel frame `positions[b]`."""
    check_num_frames(num_frames)
    batch = image.shape[0]
    if len(positions) != batch:
        raise ValueError(f"{len(positions)} positions for a batch of {batch} images")
    video = image.new_zeros(batch, image.shape[1], num_frames, *image.shape[2:])
    for b, position in enumerate(positions):
        pixel_to_latent_index(position, num_frames)  # validates the range
        video[b, :, position - 1] = image[b]
    return video


def condition_mask(
    positions: Sequence[int],
    num_frames: int,
    latent_height: int,
    latent_width: int,
    predicted_value: float = 0.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Wan's 4-channel frame mask `[B, 4, F_latent, h, w]`: 1 at the image's pixel frame, `predicted_value` elsewhere.

    With the image at frame 1 and `predicted_value=0` this is exactly the mask diffusers' Wan I2V builds.
    """
    check_num_frames(num_frames)
    per_pixel = torch.full((len(positions), num_frames), float(predicted_value), dtype=dtype, device=device)
    for b, position in enumerate(positions):
        pixel_to_latent_index(position, num_frames)
        per_pixel[b, position - 1] = 1.0
    # latent frame 0 holds pixel frame 0 alone: repeat it so every latent frame has 4 mask channels
    per_pixel = torch.cat([per_pixel[:, :1].repeat(1, TEMPORAL_COMPRESSION), per_pixel[:, 1:]], dim=1)
    mask = per_pixel.view(len(positions), -1, TEMPORAL_COMPRESSION).transpose(1, 2)  # [B, 4, F_latent]
    return mask[:, :, :, None, None].expand(-1, -1, -1, latent_height, latent_width).contiguous()


__all__ = [
    "NarrativeContexts", "anchor_latent_index", "condition_mask", "decode_latents", "encode_anchor", "encode_images",
    "encode_texts", "encode_video", "enhanced_condition", "frame_contexts", "narratives_per_frame", "pad_to",
    "padded_lengths", "place_image", "token_mask",
]


def encode_texts(tokenizer, text_encoder, texts: Sequence[str], max_sequence_length: int, device=None,
                 return_lengths: bool = False):
    """UMT5 embeddings `[N, max_sequence_length, D]`, zero past each text's length, exactly as Wan's pipeline
    computes them (`WanImageToVideoPipeline.encode_prompt`: the same text cleaning, tokenizer call and zeroing,
    checked bit for bit in tests/test_conditioning.py), so training, caching and inference cannot drift apart.

    With `return_lengths`, also each text's length in tokens `[N]` (the tokenizer's attention mask): what the
    training cache stores, and where the token mask comes from (`token_mask`)."""
    from diffusers.pipelines.wan.pipeline_wan_i2v import prompt_clean

    tokens = tokenizer([prompt_clean(t) for t in texts], padding="max_length", max_length=max_sequence_length,
                       truncation=True, add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
    lengths = tokens.attention_mask.gt(0).sum(dim=1).long()
    model_device = _execution_device(text_encoder)
    hidden = text_encoder(tokens.input_ids.to(model_device), tokens.attention_mask.to(model_device)).last_hidden_state
    device = device if device is not None else model_device
    hidden = hidden.to(dtype=text_encoder.dtype, device=device)
    embeds = torch.where(token_mask(lengths.to(device), max_sequence_length)[..., None], hidden, hidden.new_zeros(()))
    return (embeds, lengths) if return_lengths else embeds


def token_mask(lengths: torch.Tensor, max_sequence_length: int) -> torch.Tensor:
    """`[..., max_sequence_length]` bool mask, True for the first `lengths[...]` tokens of each text."""
    return torch.arange(max_sequence_length, device=lengths.device) < lengths[..., None]


def anchor_latent_index(positions: Sequence[int], num_frames: int, device=None) -> torch.Tensor:
    """Each 1-based pixel anchor position as its latent-frame index `[B]`."""
    return torch.tensor([pixel_to_latent_index(p, num_frames) for p in positions], device=device)


def padded_lengths(embeds: torch.Tensor) -> torch.Tensor:
    """`[..., L, D]` text embeddings that arrive without their lengths -> the lengths `[...]`, read off Wan's zero
    padding (a token inside a text never embeds to an all-zero vector; `encode_texts` gives the same numbers from
    the tokenizer). Only for embeddings from outside, a caller's `prompt_embeds` or an old cache file: texts
    encoded here carry their lengths from `encode_texts(..., return_lengths=True)` on."""
    return embeds.ne(0).any(-1).sum(-1)


def pad_to(tensor: torch.Tensor, size: int, dim: int = 0) -> torch.Tensor:
    """`tensor` zero-padded along `dim` to `size` entries: the one way texts are padded to the context length
    and batches of captions to a common count."""
    missing = size - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor, tensor.new_zeros(shape)], dim=dim)


def _execution_device(module) -> torch.device:
    """Where `module`'s forward runs (an offloaded model's hook device), as diffusers' pipelines ask it."""
    from diffusers.utils.torch_utils import get_module_execution_device

    return get_module_execution_device(module)


def encode_images(image_encoder, image_processor, images, device=None) -> torch.Tensor:
    """CLIP tokens `[N, tokens, D]` (penultimate hidden states) of each image, exactly as Wan's pipeline computes
    them (`WanImageToVideoPipeline.encode_image`)."""
    model_device = _execution_device(image_encoder)
    inputs = image_processor(images=list(images), return_tensors="pt").to(model_device)
    hidden = image_encoder(**inputs, output_hidden_states=True).hidden_states[-2]
    return hidden.to(device if device is not None else model_device)


def _latent_stats(vae, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (1, vae.config.z_dim, 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean).view(shape).to(like.device, like.dtype)
    std = torch.tensor(vae.config.latents_std).view(shape).to(like.device, like.dtype)
    return mean, std


def encode_video(vae, video: torch.Tensor) -> torch.Tensor:
    """VAE latents (distribution mode) normalised as Wan's DiT expects them: (z - mean) / std."""
    latents = vae.encode(video.to(device=vae.device, dtype=vae.dtype)).latent_dist.mode()
    mean, std = _latent_stats(vae, latents)
    return (latents - mean) * (1.0 / std)


def encode_anchor(vae, image: torch.Tensor) -> torch.Tensor:
    """c_i of Algorithm 1: each condition image `[B, 3, H, W]` encoded on its own, as a one-frame video ->
    `[B, C, h, w]`, the same latent wherever the image is placed.

    Not the latent frame of Wan's zero video holding the image at its position: a causal video VAE codes four
    frames per latent frame, and a lone image among black frames is a video it never saw. ReasonDiff-mini's
    VAE v2 decodes that latent back to the image at 10-12 dB (the image alone: 43 dB), and a DiT trained on it
    lands the image 3.5 dB further from the condition (docs/training.md, "The anchor latent"). At frame 1 the
    two agree: the causal VAE codes the first frame alone."""
    return encode_video(vae, image[:, :, None])[:, :, 0]


def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Inverse of `encode_video`'s normalisation, then the VAE decoder: pixels in [-1, 1]."""
    latents = latents.to(device=vae.device, dtype=vae.dtype)
    mean, std = _latent_stats(vae, latents)
    return vae.decode(latents / (1.0 / std) + mean, return_dict=False)[0]


def enhanced_condition(
    alignformer,
    anchor_latents: torch.Tensor,
    positions: Sequence[int],
    num_frames: int,
    narratives: torch.Tensor,
    narrative_mask: torch.Tensor,
    predicted_mask_value: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ReasonDiff's DiT condition channels `[B, 4 + C, F, h, w]` = cat[mask, c*], and c* itself (Eq. 3-5).

    `anchor_latents` `[B, C, h, w]` are the condition images' latents at their pixel `positions`;
    `narratives` `[B, F, L, D]` each latent frame's text. c* at each anchor frame is the anchor latent,
    bit for bit, whatever precision the AlignFormer runs in. The pipeline and the trainer both call this.
    """
    latent_index = anchor_latent_index(positions, num_frames, anchor_latents.device)
    dtype = next(alignformer.parameters()).dtype  # also works through a DDP wrapper
    c_star = alignformer(anchor_latents.to(dtype), latent_index, narratives.to(dtype), narrative_mask).float()
    c_star = torch.where(
        (torch.arange(c_star.shape[2], device=c_star.device)[None] == latent_index[:, None])[:, None, :, None, None],
        anchor_latents.float()[:, :, None],
        c_star,
    )
    mask = condition_mask(positions, num_frames, *anchor_latents.shape[-2:], predicted_mask_value,
                          device=anchor_latents.device)
    return torch.cat([mask, c_star], dim=1), c_star


def frame_contexts(text_embeds: torch.Tensor, text_lengths: torch.Tensor,
                   caption_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample narrative contexts for a batch, the way the pipeline builds them for one video.

    `text_embeds` `[B, U, L, D]` holds each sample's distinct captions, `caption_index` `[B, T]` the
    caption of every pixel frame. Returns contexts `[B, U', L, D]` (zero-padded across the batch),
    `frame_to_context` `[B, F]` and, from `text_lengths` `[B, U]` (the cache's token counts), each context's
    length `[B, U']` (a mixture of captions is as long as its longest member), for `narratives_per_frame`.
    """
    per_sample, maps, lengths = [], [], []
    for b, (embeds, index) in enumerate(zip(text_embeds, caption_index.tolist())):
        contexts = NarrativeContexts.from_latent_descriptions(group_by_latent_frame(index))
        per_sample.append(contexts.embed(embeds[contexts.texts]))
        maps.append(contexts.frame_to_context)
        lengths.append(contexts.lengths(text_lengths[b][contexts.texts]))
    most = max(c.shape[0] for c in per_sample)
    padded = torch.stack([pad_to(c, most) for c in per_sample])
    frame_to_context = torch.tensor(maps, device=text_embeds.device)
    return padded, frame_to_context, torch.stack([pad_to(n, most) for n in lengths])


def narratives_per_frame(contexts: torch.Tensor, frame_to_context: torch.Tensor,
                         context_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`[B, U, L, D]` contexts -> each latent frame's narrative `[B, F, L, D]` and its token mask `[B, F, L]`,
    from the contexts' lengths `[B, U]` (`frame_contexts`' third output), carried from where the texts were
    encoded: the cache's texts.jsonl for the trainer, the tokenizer for the pipeline."""
    batch = torch.arange(contexts.shape[0], device=contexts.device)[:, None]
    narratives = contexts[batch, frame_to_context]
    return narratives, token_mask(context_lengths.to(contexts.device)[batch, frame_to_context], contexts.shape[2])


@dataclass(frozen=True)
class NarrativeContexts:
    """The distinct texts to encode, the contexts built from them, and which context each latent frame reads.

    A latent frame whose pixel frames share one description reads that description's embedding
    (exactly); one that straddles a change of description reads the frame-weighted mean of its
    pixel frames' embeddings. Equal mixtures are stored once.
    """

    texts: list[str]  # distinct descriptions, each encoded once
    contexts: list[tuple[tuple[int, int], ...]]  # per context: (text index, weight) pairs
    frame_to_context: list[int]  # per latent frame

    @classmethod
    def from_latent_descriptions(cls, latent_descriptions: Sequence[Sequence[str]]) -> "NarrativeContexts":
        texts: dict[str, int] = {}
        contexts: dict[tuple[tuple[int, int], ...], int] = {}
        frame_to_context = []
        for pixel_texts in latent_descriptions:
            counts = Counter(texts.setdefault(t, len(texts)) for t in pixel_texts)
            common = math.gcd(*counts.values())
            key = tuple(sorted((index, n // common) for index, n in counts.items()))
            frame_to_context.append(contexts.setdefault(key, len(contexts)))
        return cls(list(texts), list(contexts), frame_to_context)

    def embed(self, text_embeds: torch.Tensor) -> torch.Tensor:
        """`[len(texts), L, D]` text embeddings -> `[len(contexts), L, D]` context embeddings."""
        out = []
        for members in self.contexts:
            if len(members) == 1:
                out.append(text_embeds[members[0][0]])
                continue
            index = torch.tensor([i for i, _ in members], device=text_embeds.device)
            weight = torch.tensor([w for _, w in members], device=text_embeds.device, dtype=text_embeds.dtype)
            out.append((text_embeds[index] * weight[:, None, None]).sum(0) / weight.sum())
        return torch.stack(out)

    def lengths(self, text_lengths: torch.Tensor) -> torch.Tensor:
        """`[len(texts)]` token counts -> `[len(contexts)]`: a mixture reaches as far as its longest text."""
        return torch.stack([max(text_lengths[i] for i, _ in members) for members in self.contexts])
