"""How ReasonDiff conditions Wan2.1-I2V: one implementation, shared by the pipeline and the trainer.

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

from ..frames import TEMPORAL_COMPRESSION, check_num_frames, group_by_latent_frame, pixel_to_latent_index


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


def encode_texts(tokenizer, text_encoder, texts: Sequence[str], max_sequence_length: int, device=None) -> torch.Tensor:
    """UMT5 embeddings `[N, max_sequence_length, D]`, zero past each text's length, exactly as Wan's pipeline
    computes them (its own method is called, so training, caching and inference cannot drift apart)."""
    from types import SimpleNamespace

    from diffusers import WanImageToVideoPipeline

    encoder = SimpleNamespace(tokenizer=tokenizer, text_encoder=text_encoder)
    device = device if device is not None else text_encoder.device
    return WanImageToVideoPipeline._get_t5_prompt_embeds(
        encoder, list(texts), max_sequence_length=max_sequence_length, device=device
    )


def encode_images(image_encoder, image_processor, images, device=None) -> torch.Tensor:
    """CLIP tokens `[N, tokens, D]` (penultimate hidden states) of each image, exactly as Wan's pipeline computes them."""
    from types import SimpleNamespace

    from diffusers import WanImageToVideoPipeline

    encoder = SimpleNamespace(image_encoder=image_encoder, image_processor=image_processor)
    device = device if device is not None else image_encoder.device
    return WanImageToVideoPipeline.encode_image(encoder, list(images), device)


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
    latent_index = torch.tensor([pixel_to_latent_index(p, num_frames) for p in positions], device=anchor_latents.device)
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


def frame_contexts(text_embeds: torch.Tensor, caption_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample narrative contexts for a batch, the way the pipeline builds them for one video.

    `text_embeds` `[B, U, L, D]` holds each sample's distinct captions, `caption_index` `[B, T]` the
    caption of every pixel frame. Returns contexts `[B, U', L, D]` (zero-padded across the batch) and
    `frame_to_context` `[B, F]`.
    """
    per_sample, maps = [], []
    for embeds, index in zip(text_embeds, caption_index.tolist()):
        contexts = NarrativeContexts.from_latent_descriptions(group_by_latent_frame(index))
        per_sample.append(contexts.embed(embeds[contexts.texts]))
        maps.append(contexts.frame_to_context)
    most = max(c.shape[0] for c in per_sample)
    padded = torch.stack([torch.cat([c, c.new_zeros(most - c.shape[0], *c.shape[1:])]) for c in per_sample])
    return padded, torch.tensor(maps, device=text_embeds.device)


def narratives_per_frame(contexts: torch.Tensor, frame_to_context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`[B, U, L, D]` contexts -> each latent frame's narrative `[B, F, L, D]` and its token mask `[B, F, L]`."""
    batch = torch.arange(contexts.shape[0], device=contexts.device)[:, None]
    narratives = contexts[batch, frame_to_context]
    return narratives, narratives.ne(0).any(-1)  # Wan zero-pads each text past its length


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
