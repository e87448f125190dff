"""Tiny, seeded, random components of the keyframe pipelines ReasonDiff renders on without weights of its own
(`WanVACEPipeline`, `LTXConditionPipeline`), built offline as `tiny_wan` builds Wan2.1-I2V: the real classes at
toy sizes, so the backends' tests run the code paths the hub checkpoints load into, in seconds on a CPU."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    AutoencoderKLLTXVideo,
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    LTXVideoTransformer3DModel,
    WanVACETransformer3DModel,
)
from transformers import T5Config, T5EncoderModel, UMT5EncoderModel

from . import tiny_wan


def _seeded(build, seed: int):
    torch.manual_seed(seed)
    return build().eval()


def vace_transformer_config() -> dict[str, Any]:
    """A 2-layer VACE DiT with a VACE block at each layer: 16 latent channels in, 96 control channels
    (inactive 16 + reactive 16 latents and the 8x8 pixel mask folded into 64)."""
    return dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
                text_dim=tiny_wan.TEXT_DIM, freq_dim=32, ffn_dim=48, num_layers=2, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=32, vace_layers=[0, 1],
                vace_in_channels=96)


def vace_components(seed: int = 0) -> dict[str, Any]:
    """Every component `WanVACEPipeline(**components)` takes (Wan2.1-VACE's classes), randomly initialised."""
    return {
        "tokenizer": tiny_wan.tokenizer(),
        "text_encoder": _seeded(lambda: UMT5EncoderModel(tiny_wan.text_encoder_config()), seed + 1),
        "transformer": _seeded(lambda: WanVACETransformer3DModel(**vace_transformer_config()), seed + 3),
        "vae": _seeded(lambda: AutoencoderKLWan(**tiny_wan.vae_config()), seed + 4),
        "scheduler": tiny_wan.scheduler(),
    }


def ltx_vae_config() -> dict[str, Any]:
    """LTX's causal VAE at width 8: 4x spatial and 4x temporal compression, 8 latent channels."""
    return dict(in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
                decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
                decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
                decoder_spatio_temporal_scaling=(True, True, False, False),
                decoder_inject_noise=(False, False, False, False, False), upsample_residual=(False, False, False, False),
                upsample_factor=(1, 1, 1, 1), timestep_conditioning=False, patch_size=1, patch_size_t=1,
                encoder_causal=True, decoder_causal=False)


def ltx_components(seed: int = 0) -> dict[str, Any]:
    """Every component `LTXConditionPipeline(**components)` takes (LTX-Video 0.9.x's classes), randomly
    initialised; the T5 encoder reads `tiny_wan`'s local tokenizer."""
    tokenizer = tiny_wan.tokenizer()
    t5 = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                  relative_attention_num_buckets=8, relative_attention_max_distance=32, dropout_rate=0.0)

    def vae():
        model = AutoencoderKLLTXVideo(**ltx_vae_config())
        model.use_framewise_encoding = False
        model.use_framewise_decoding = False
        return model

    return {
        "tokenizer": tokenizer,
        "text_encoder": _seeded(lambda: T5EncoderModel(t5), seed + 1),
        "transformer": _seeded(lambda: LTXVideoTransformer3DModel(
            in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=8,
            cross_attention_dim=32, num_layers=1, caption_channels=32), seed + 3),
        "vae": _seeded(vae, seed + 4),
        "scheduler": FlowMatchEulerDiscreteScheduler(),
    }
