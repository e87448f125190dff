"""The text-to-image mini decoder: diffusers' `WanPipeline` (Wan2.1 T2V) at one frame, on SynthWorld stills.

ThinkDiff swaps an LLM decoder for a diffusion model that reads the same encoder's space; here that encoder is
the mini's frozen UMT5 (`reasondiff-mini/text_encoder`), so an aligner trained against its decoder drives
this model. Components: a small `WanTransformer3DModel` in T2V configuration (16 latent channels in, no image
branch), the mini VAE (`AutoencoderKLWan`, 4x spatial: a 64x64 still is 16x16 latents), the UMT5 encoder and
tokenizer, and the mini's UniPC flow-matching scheduler. Prompts are Wan's layout at mini scale: the real
tokens, then zeros up to `TEXT_LENGTH`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...conditioning import pad_to

TEXT_LENGTH = 64  # prompt tokens (Wan: 512); world captions are < 16 tokens, a VLM answer <= 64
STEPS, GUIDANCE, SIZE = 20, 3.0, 64  # what SynthWorld-CoBSAT and `thinkdiff generate --model mini` draw with


def transformer_config(width: int = 128, layers: int = 4) -> dict[str, Any]:
    """A one-frame Wan T2V DiT: `layers` blocks of `width` (heads of 64), text width 64 (the mini UMT5)."""
    heads = max(width // 64, 1)
    return dict(patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=width // heads, in_channels=16,
                out_channels=16, text_dim=64, freq_dim=64, ffn_dim=4 * width, num_layers=layers,
                cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=64)


TINY = transformer_config(width=32, layers=1)  # tests and smoke runs


def build_pipeline(transformer=None, vae=None, text_encoder=None, tokenizer=None, config: dict | None = None):
    """A `WanPipeline` from parts; missing parts: the shipped mini's UMT5, tokenizer and VAE, a fresh DiT."""
    from diffusers import AutoencoderKLWan, WanPipeline, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5EncoderModel

    from ...models import tiny_wan as tiny
    from ..pretrained import shipped_path

    root = shipped_path()
    transformer = transformer if transformer is not None else WanTransformer3DModel(**(config or transformer_config()))
    vae = vae if vae is not None else AutoencoderKLWan.from_pretrained(root / "vae")
    text_encoder = text_encoder if text_encoder is not None else UMT5EncoderModel.from_pretrained(root / "text_encoder")
    tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(root / "tokenizer")
    return WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder.eval(), vae=vae.eval(),
                       scheduler=tiny.scheduler(), transformer=transformer.eval())


@torch.no_grad()
def encode_text(tokenizer, text_encoder, texts: list[str], length: int = TEXT_LENGTH) -> torch.Tensor:
    """UMT5 states of the real tokens, zeros after them up to `length` (Wan's prompt layout), `[B, length, 64]`."""
    ids = tokenizer(texts, padding="max_length", max_length=length, truncation=True, add_special_tokens=True,
                    return_tensors="pt")
    states = text_encoder(ids.input_ids, attention_mask=ids.attention_mask).last_hidden_state
    return states * ids.attention_mask[..., None].to(states.dtype)


def pad_tokens(tokens: torch.Tensor, length: int = TEXT_LENGTH) -> torch.Tensor:
    """Aligned tokens `[1, n, D]` in the same layout: cut to `length`, zeros after."""
    return pad_to(tokens[:, :length], length, dim=1)


class MiniDecoder:
    """The bench's `Decoder`: text through the pipeline's own UMT5, or ThinkDiff tokens as `prompt_embeds`."""

    def __init__(self, pipe, steps: int = STEPS, guidance: float = GUIDANCE, size: int = SIZE):
        self.pipe, self.steps, self.guidance, self.size = pipe, steps, guidance, size
        self.pipe.set_progress_bar_config(disable=True)
        self.empty = encode_text(pipe.tokenizer, pipe.text_encoder, [""])

    @classmethod
    def from_pretrained(cls, path: str | Path, vae: str | Path | None = None, **kwargs) -> MiniDecoder:
        from diffusers import AutoencoderKLWan, WanTransformer3DModel

        path = Path(path)
        vae_path = Path(vae) if vae is not None else path / "vae" if (path / "vae").is_dir() else None
        return cls(build_pipeline(WanTransformer3DModel.from_pretrained(path / "transformer"),
                                  AutoencoderKLWan.from_pretrained(vae_path) if vae_path else None), **kwargs)

    def text(self, text: str, seed: int) -> np.ndarray:
        return self.tokens(encode_text(self.pipe.tokenizer, self.pipe.text_encoder, [text]), seed)

    @torch.no_grad()
    def tokens(self, tokens: torch.Tensor, seed: int) -> np.ndarray:
        dtype = self.pipe.transformer.dtype
        out = self.pipe(prompt_embeds=pad_tokens(tokens).to(dtype), negative_prompt_embeds=self.empty.to(dtype),
                        guidance_scale=self.guidance, num_inference_steps=self.steps, height=self.size,
                        width=self.size, num_frames=1, output_type="np",
                        generator=torch.Generator().manual_seed(seed))
        return (np.clip(out.frames[0][0], 0, 1) * 255).round().astype(np.uint8)
