"""ReasonDiff-mini's components: Wan2.1-I2V's classes at SynthWorld's scale.

The text encoder (UMT5) and the image encoder (CLIP vision) stay as seeded random networks, frozen:
on a world with a 46-word lexicon and flat colours, a fixed random encoder already separates every
input, and the DiT and AlignFormer learn to read it (as Wan's DiT learns to read a frozen UMT5). The
VAE is trained on SynthWorld (`reasondiff.mini.vae`), the DiT from scratch as a plain I2V model
(stage 0), then ReasonDiff's stages 1 and 2 follow, all with `reasondiff train`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLWan
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, UMT5Config, UMT5EncoderModel

from ..models import tiny_wan
from .vae import MINI_VAE
from .world import AGENTS, OBJECTS, ROOMS, EventScript

TEXT_DIM = 64
IMAGE_DIM = 64


def world_words() -> list[str]:
    """Every word the world's captions and prompts use, so the tokenizer keeps each whole."""
    words: dict[str, None] = {}
    for agent in AGENTS:
        for obj in OBJECTS:
            for leaves in (True, False):
                for caption in EventScript(agent, obj, "kitchen", leaves=leaves).captions():
                    words.update(dict.fromkeys(caption.replace(",", " ").split()))
    for room in ROOMS:
        words.update(dict.fromkeys(room.split()))
    words.update(dict.fromkeys(["plays", "a"]))
    return list(words)


def tokenizer():
    return tiny_wan.tokenizer(words=world_words())


def transformer_config() -> dict[str, Any]:
    """A ~1.5 M-parameter Wan I2V DiT: 4 blocks of width 128 (2 heads of 64), sized so that stage 0 from scratch
    makes thousands of batch-16 steps in half an hour on 2 CPU cores (6 blocks of width 192 ran ~4x slower)."""
    heads, head_dim = 2, 64
    return dict(patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=head_dim, in_channels=36,
                out_channels=16, text_dim=TEXT_DIM, freq_dim=64, ffn_dim=4 * heads * head_dim, num_layers=4,
                cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=IMAGE_DIM,
                added_kv_proj_dim=heads * head_dim, rope_max_seq_len=64)


def alignformer_config() -> dict[str, Any]:
    return dict(in_channels=16, patch_size=2, text_dim=TEXT_DIM, hidden_dim=128, num_heads=8, num_cross_stages=2,
                ff_mult=2)


def frozen_encoders(seed: int = 0) -> dict[str, Any]:
    """The text and image encoders (seeded random, frozen) with their tokenizer and processor."""
    tok = tokenizer()
    torch.manual_seed(seed + 1)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tok), d_model=TEXT_DIM, d_kv=16, d_ff=128, num_layers=2,
                                               num_heads=4, relative_attention_num_buckets=8,
                                               relative_attention_max_distance=32, dropout_rate=0.0)).eval()
    torch.manual_seed(seed + 2)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=IMAGE_DIM, projection_dim=IMAGE_DIM, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, image_size=32, patch_size=8)).eval()
    return {"tokenizer": tok, "text_encoder": text_encoder, "image_encoder": image_encoder,
            "image_processor": tiny_wan.image_processor(), "scheduler": tiny_wan.scheduler()}


def components(vae: AutoencoderKLWan | str | Path | None = None, seed: int = 0) -> dict[str, Any]:
    """Everything but the DiT: frozen encoders, scheduler and the VAE (trained if a path is given)."""
    if vae is None:
        torch.manual_seed(seed)
        vae = AutoencoderKLWan(**MINI_VAE)
    elif not isinstance(vae, AutoencoderKLWan):
        vae = AutoencoderKLWan.from_pretrained(vae)
    return {**frozen_encoders(seed), "vae": vae.eval()}
