"""Tiny, seeded, randomly initialised ThinkDiff components, built offline.

Every test (and `--model tiny` on the command line) runs the *real* classes that the released
checkpoints load into -- T5/UMT5 encoder-decoders, Qwen2-VL, CLIP vision, FLUX, CogVideoX, Wan --
at toy sizes, so the code paths and tensor layouts are the real ones. Outputs are noise: these
models are untrained.
"""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModel,
    Qwen2TokenizerFast,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
    Qwen2VLProcessor,
    T5Config,
    T5EncoderModel,
    T5ForConditionalGeneration,
    UMT5ForConditionalGeneration,
)

from reasondiff.models import tiny_wan as wan_tiny

T5_DIM = 32  # d_model of the tiny T5: FLUX's joint_attention_dim and CogVideoX's text_embed_dim follow it
VLM_DIM = 32  # hidden size of the tiny Qwen2-VL language model
CLIP_DIM = 32  # hidden size of the tiny CLIP vision tower

# The toy corpus's words and the words of the CoBSAT item lists, kept whole by the tiny T5 tokenizer.
WORDS = wan_tiny.VOCABULARY + """
create image picture photo next square circle triangle star on background shape small big purple orange
pink brown gray grey leaf hat chair box apple bag sheep tiger zebra monkey lion cow wood wicker paper metal
""".split()  # noqa: SIM905


def seeded(build, seed: int):
    torch.manual_seed(seed)
    return build().eval()


# ---------------------------------------------------------------- T5 / UMT5 (LLM encoder-decoder)
def t5_tokenizer():
    """The SentencePiece T5 tokenizer of `reasondiff.models.tiny_wan`, with our extra words kept whole."""
    return wan_tiny.tokenizer(WORDS)


def t5_config(vocab_size: int | None = None) -> T5Config:
    return T5Config(vocab_size=vocab_size or len(t5_tokenizer()), d_model=T5_DIM, d_kv=8, d_ff=64, num_layers=2,
                    num_decoder_layers=2, num_heads=4, relative_attention_num_buckets=8,
                    relative_attention_max_distance=32, dropout_rate=0.0, feed_forward_proj="gated-gelu",
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, tie_word_embeddings=False)


def t5(seed: int = 0, encoder_norm_scale: float | None = None) -> T5ForConditionalGeneration:
    """A T5 v1.1-style encoder-decoder (the family of FLUX's and CogVideoX's text encoder).

    `encoder_norm_scale` sets the encoder's final RMSNorm weight to that scale (with a little
    per-channel spread), as a trained checkpoint's is far from the default ones; see
    `pretrain_t5_toy`.
    """
    model = seeded(lambda: T5ForConditionalGeneration(t5_config()), seed)
    if encoder_norm_scale is not None:
        g = torch.Generator().manual_seed(seed + 7)
        with torch.no_grad():
            w = model.encoder.final_layer_norm.weight
            w.copy_(encoder_norm_scale * (1 + 0.2 * torch.randn(w.shape, generator=g)))
    return model


def t5_encoder_from(model: T5ForConditionalGeneration) -> T5EncoderModel:
    """The encoder half of `model` as the `T5EncoderModel` a diffusers pipeline holds (same weights)."""
    encoder = T5EncoderModel(model.config).eval()
    encoder.load_state_dict(model.state_dict(), strict=False)
    return encoder


def umt5(seed: int = 0) -> UMT5ForConditionalGeneration:
    """The encoder-decoder whose encoder is Wan2.1's text encoder, at the size of `reasondiff.models.tiny_wan`."""
    cfg = wan_tiny.text_encoder_config()
    cfg.num_decoder_layers, cfg.decoder_start_token_id, cfg.tie_word_embeddings = 2, 0, False
    return seeded(lambda: UMT5ForConditionalGeneration(cfg), seed)


# ---------------------------------------------------------------- Qwen2-VL (the LVLM)
class _OfflineQwen2VLProcessor(Qwen2VLProcessor):
    """Qwen2VLProcessor without a video processor: transformers' video processors need torchvision, which
    our CPU environment lacks; images and text are processed by the real classes."""

    def check_argument_for_proper_class(self, argument_name, argument):
        return None if argument is None else super().check_argument_for_proper_class(argument_name, argument)


QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def qwen2vl_processor() -> Qwen2VLProcessor:
    """Byte-level BPE with no merges (one token per byte) + Qwen2-VL's special tokens and chat layout.

    Images are resized to 56x56 (a 4x4 grid of 14-px patches, merged 2x2 into 4 image tokens).
    """
    from tokenizers import Tokenizer, decoders, models
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = {c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(QWEN_SPECIAL)
    tokenizer = Qwen2TokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    images = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 56, patch_size=14, merge_size=2,
                                      temporal_patch_size=2)
    return _OfflineQwen2VLProcessor(image_processor=images, tokenizer=tokenizer, chat_template=QWEN_CHAT_TEMPLATE)


def qwen2vl(seed: int = 0, processor: Qwen2VLProcessor | None = None) -> Qwen2VLForConditionalGeneration:
    tok = (processor or qwen2vl_processor()).tokenizer
    ids = {s: tok.convert_tokens_to_ids(s) for s in QWEN_SPECIAL}
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=VLM_DIM, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]},
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                         bos_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=VLM_DIM, num_heads=4, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    return seeded(lambda: Qwen2VLForConditionalGeneration(cfg), seed)


# ---------------------------------------------------------------- CLIP vision (ThinkDiff-CLIP's VLM)
def clip_vision(seed: int = 0) -> CLIPVisionModel:
    """CLIP ViT at 32x32 with 8-px patches: a 4x4 patch grid + CLS."""
    cfg = CLIPVisionConfig(hidden_size=CLIP_DIM, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                           image_size=32, patch_size=8)
    return seeded(lambda: CLIPVisionModel(cfg), seed)


def eva_vision(seed: int = 0):
    """BLIP-2's vision model (`Blip2VisionModel`, EVA ViT-g's class in transformers) at the tiny CLIP's size."""
    from transformers import Blip2VisionConfig, Blip2VisionModel

    cfg = Blip2VisionConfig(hidden_size=CLIP_DIM, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            image_size=32, patch_size=8)
    return seeded(lambda: Blip2VisionModel(cfg), seed)


def clip_image_processor():
    return wan_tiny.image_processor()


# ---------------------------------------------------------------- diffusion decoders
def clip_tokenizer() -> CLIPTokenizer:
    """A character-level CLIP BPE tokenizer (no merges) built from an in-memory vocabulary."""
    chars = string.ascii_lowercase + string.digits + string.punctuation
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n")
        return CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"), model_max_length=77)


def flux_components(seed: int = 0, t5_model: T5ForConditionalGeneration | None = None) -> dict[str, Any]:
    """Every component `FluxPipeline(**components)` takes; text_encoder_2 is the encoder of `t5_model`."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

    clip_tok = clip_tokenizer()
    t5_model = t5_model or t5(seed)
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "vae": seeded(lambda: AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,),
                                            layers_per_block=1, latent_channels=1, norm_num_groups=1,
                                            use_quant_conv=False, use_post_quant_conv=False,
                                            shift_factor=0.0609, scaling_factor=1.5035), seed + 1),
        "text_encoder": seeded(lambda: CLIPTextModel(CLIPTextConfig(
            vocab_size=len(clip_tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
            projection_dim=32, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1)), seed + 2),
        "tokenizer": clip_tok,
        "text_encoder_2": t5_encoder_from(t5_model),
        "tokenizer_2": t5_tokenizer(),
        "transformer": seeded(lambda: FluxTransformer2DModel(
            patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=T5_DIM, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8]),
            seed + 3),
    }


def cogvideox_components(seed: int = 0, t5_model: T5ForConditionalGeneration | None = None) -> dict[str, Any]:
    """Every component `CogVideoXPipeline(**components)` takes; 16 text tokens instead of 226."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXTransformer3DModel

    t5_model = t5_model or t5(seed)
    return {
        "tokenizer": t5_tokenizer(),
        "text_encoder": t5_encoder_from(t5_model),
        "vae": seeded(lambda: AutoencoderKLCogVideoX(
            in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
            up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
            layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4), seed + 1),
        "transformer": seeded(lambda: CogVideoXTransformer3DModel(
            num_attention_heads=4, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2,
            text_embed_dim=T5_DIM, num_layers=1, sample_width=2, sample_height=2, sample_frames=9, patch_size=2,
            temporal_compression_ratio=4, max_text_seq_length=16), seed + 2),
        "scheduler": CogVideoXDDIMScheduler(),
    }


def wan_components(seed: int = 0) -> dict[str, Any]:
    """The tiny Wan2.1-I2V components of `reasondiff.models.tiny_wan` (UMT5 text encoder)."""
    return wan_tiny.wan_components(seed)
