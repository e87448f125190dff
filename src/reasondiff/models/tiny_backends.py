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


def _gemma3(vocab_size: int):
    """A 2-layer Gemma-3 (LTX-2's text encoder class) with a 1-layer SigLIP tower: 32 wide, so the connectors'
    4 heads x 8 match its hidden size as LTX-2.0's shared projection requires."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3TextConfig, SiglipVisionConfig

    text = Gemma3TextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=32, num_hidden_layers=2,
                            num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=256,
                            sliding_window=64)
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                image_size=16, patch_size=8)
    return Gemma3ForConditionalGeneration(Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4))


def _ltx2_models(hidden: int, layers: int) -> dict[str, Any]:
    """LTX-2's DiT, text connectors, video VAE (2x spatial and temporal), audio VAE and vocoder, at diffusers' own
    test sizes (tests/pipelines/ltx2/test_ltx2_condition.py)."""
    from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    def vae():
        model = AutoencoderKLLTX2Video(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8,), decoder_block_out_channels=(8,),
            layers_per_block=(1,), decoder_layers_per_block=(1, 1), spatio_temporal_scaling=(True,),
            decoder_spatio_temporal_scaling=(True,), decoder_inject_noise=(False, False), downsample_type=("spatial",),
            upsample_residual=(False,), upsample_factor=(1,), timestep_conditioning=False, patch_size=1,
            patch_size_t=1, encoder_causal=True, decoder_causal=False)
        model.use_framewise_encoding = False
        model.use_framewise_decoding = False
        return model

    connector = dict(num_attention_heads=4, attention_head_dim=8, num_layers=1, num_learnable_registers=None)
    return {
        "transformer": lambda: LTX2VideoTransformer3DModel(
            in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
            cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2,
            audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=2, qk_norm="rms_norm_across_heads",
            caption_channels=hidden, rope_double_precision=False, rope_type="split"),
        "connectors": lambda: LTX2TextConnectors(
            caption_channels=hidden, text_proj_in_factor=layers + 1, connector_rope_base_seq_len=32,
            rope_theta=10000.0, rope_double_precision=False, causal_temporal_positioning=False, rope_type="split",
            **{f"{side}_connector_{key}": value for side in ("video", "audio") for key, value in connector.items()}),
        "vae": vae,
        "audio_vae": lambda: AutoencoderKLLTX2Audio(
            base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1, attn_resolutions=None, in_channels=2,
            resolution=32, latent_channels=2, norm_type="pixel", causality_axis="height", dropout=0.0,
            mid_block_add_attention=False, sample_rate=16000, mel_hop_length=160, is_causal=True, mel_bins=8),
        "vocoder": lambda: LTX2Vocoder(
            in_channels=2 * 8, hidden_channels=32, out_channels=2, upsample_kernel_sizes=[4, 4],
            upsample_factors=[2, 2], resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]],
            leaky_relu_negative_slope=0.1, output_sampling_rate=16000),
    }


def ltx2_components(seed: int = 0) -> dict[str, Any]:
    """Every component `LTX2ConditionPipeline(**components)` takes (LTX-2.0's classes), randomly initialised; the
    Gemma-3 encoder reads `tiny_wan`'s local tokenizer (the hub's Gemma tokenizer cannot be downloaded here)."""
    tokenizer = tiny_wan.tokenizer()
    text_encoder = _seeded(lambda: _gemma3(len(tokenizer)), seed + 1)
    config = text_encoder.config.text_config
    models = {name: _seeded(build, seed + 3 + i)
              for i, (name, build) in enumerate(_ltx2_models(config.hidden_size, config.num_hidden_layers).items())}
    return {**models, "tokenizer": tokenizer, "text_encoder": text_encoder,
            "scheduler": FlowMatchEulerDiscreteScheduler(), "audio_scheduler": None}
