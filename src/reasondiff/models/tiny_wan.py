"""Tiny, seeded, randomly initialised Wan2.1-I2V components, built offline.

No weights can be downloaded in our CI, so every test runs the *real* classes that
`Wan-AI/Wan2.1-I2V-14B-480P-Diffusers` loads into, at toy sizes: the same code paths, the same
tensor layouts (36 DiT input channels, a 512-token text context, CLIP penultimate hidden states as
image tokens), in seconds on a CPU. Outputs are noise: these models are untrained.

    >>> from diffusers import WanImageToVideoPipeline
    >>> from reasondiff.models import tiny_wan
    >>> pipe = WanImageToVideoPipeline(**tiny_wan.wan_components(seed=0))
"""

from __future__ import annotations

import importlib.util
import string
from typing import Any

import torch
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    T5Tokenizer,
    UMT5Config,
    UMT5EncoderModel,
)

from .alignformer import AlignFormer

TEXT_DIM = 32  # UMT5 d_model; the DiT's text_dim and the AlignFormer's text_dim must match it
IMAGE_DIM = 32  # CLIP vision hidden size; the DiT's image_dim
LATENT_CHANNELS = 16  # as Wan2.1's VAE (z_dim)

# Words the tiny tokenizer keeps whole; anything else falls back to single characters, so no input
# is ever <unk>. The list covers the bundled example and the scenes our tests and docs talk about.
VOCABULARY = """
a an the of in on at to from into with and or but is are was were it its his her their this that
cat dog pig ball bird person man woman child kid agent room floor table shelf kitchen garden street park
plays play playing runs running walks walking enters entering leaves leaving jumps jumping falls falling
knocks knocking hits hitting breaks breaking broken intact vase window shattered tower fallen glass
spilled water cup book tree car bicycle door wall light dark red green blue yellow white black left right
first last frame video scene slowly quickly then while after before still moves moving toward away over
square middle circle
""".split()


def tokenizer(words: list[str] | None = None) -> T5Tokenizer:
    """A T5 (SentencePiece-unigram) tokenizer built locally: whole words from `words`, characters otherwise.

    It is the class UMT5 checkpoints ship, so saving and `AutoTokenizer.from_pretrained` round-trip.
    """
    words = VOCABULARY if words is None else words
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    vocab += [("▁" + w, -1.0) for w in dict.fromkeys(words)]
    vocab += [(c, -8.0) for c in string.ascii_letters + string.digits + string.punctuation]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def transformer_config() -> dict[str, Any]:
    """A 2-layer Wan I2V DiT: 36 input channels (noisy 16 + mask 4 + condition 16) and image cross-attention."""
    heads, head_dim = 2, 12
    return dict(
        patch_size=(1, 2, 2),
        num_attention_heads=heads,
        attention_head_dim=head_dim,
        in_channels=LATENT_CHANNELS + 4 + LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        text_dim=TEXT_DIM,
        freq_dim=32,
        ffn_dim=48,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        image_dim=IMAGE_DIM,
        added_kv_proj_dim=heads * head_dim,  # Wan2.1 I2V: separate K/V projections for the image tokens
        rope_max_seq_len=32,
    )


def vae_config() -> dict[str, Any]:
    """Wan's causal VAE at base width 4: 8x spatial, 4x temporal compression, 16 latent channels."""
    return dict(base_dim=4, z_dim=LATENT_CHANNELS, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                temperal_downsample=[False, True, True])


def text_encoder_config() -> UMT5Config:
    return UMT5Config(vocab_size=len(tokenizer()), d_model=TEXT_DIM, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, relative_attention_max_distance=32, dropout_rate=0.0)


def image_encoder_config() -> CLIPVisionConfig:
    """CLIP ViT at 32x32 with 8x8 patches: 17 image tokens (16 patches + class token)."""
    return CLIPVisionConfig(hidden_size=IMAGE_DIM, projection_dim=IMAGE_DIM, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8)


def image_processor():
    """CLIP preprocessing to 32x32.

    transformers 5 makes `CLIPImageProcessor` a torchvision-backed class that falls back to the PIL
    one with a warning when torchvision is missing (as it is in our CPU environment); we choose the
    PIL class ourselves in that case, so no warning is printed on every build.
    """
    if importlib.util.find_spec("torchvision") is None:
        try:
            from transformers import CLIPImageProcessorPil as processor_class
        except ImportError:  # transformers 4: the PIL implementation is the default class
            from transformers import CLIPImageProcessor as processor_class
    else:
        from transformers import CLIPImageProcessor as processor_class
    return processor_class(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


def scheduler() -> UniPCMultistepScheduler:
    """The scheduler the hub's Wan2.1-I2V-480P ships: UniPC over flow-matching sigmas, shift 3.0."""
    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                                   num_train_timesteps=1000)


def wan_components(seed: int = 0) -> dict[str, Any]:
    """Every component `WanImageToVideoPipeline(**components)` takes, randomly initialised from `seed`.

    Each model is seeded on its own, so the weights of one do not depend on which others are built.
    """

    def seeded(build, offset):
        torch.manual_seed(seed + offset)
        return build().eval()

    return {
        "tokenizer": tokenizer(),
        "text_encoder": seeded(lambda: UMT5EncoderModel(text_encoder_config()), 1),
        "image_encoder": seeded(lambda: CLIPVisionModelWithProjection(image_encoder_config()), 2),
        "image_processor": image_processor(),
        "transformer": seeded(lambda: WanTransformer3DModel(**transformer_config()), 3),
        "vae": seeded(lambda: AutoencoderKLWan(**vae_config()), 4),
        "scheduler": scheduler(),
    }


def alignformer_config() -> dict[str, Any]:
    return dict(in_channels=LATENT_CHANNELS, patch_size=2, text_dim=TEXT_DIM, hidden_dim=64, num_heads=8,
                num_cross_stages=2, ff_mult=2)


def alignformer(seed: int = 0) -> AlignFormer:
    """An AlignFormer that fits `wan_components`: 16 latent channels in, UMT5 width 32 for narratives."""
    torch.manual_seed(seed)
    return AlignFormer(**alignformer_config())
