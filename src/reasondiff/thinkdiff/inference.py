"""ThinkDiff inference: aligned tokens replace the T5 prompt embeddings of a diffusion model.

In training the decoder was an LLM decoder reading aligned tokens as encoder outputs; in inference
(Eq. 3, Eq. 5) a diffusion model that reads the *same* encoder's outputs as its prompt takes its
place. Nothing of the diffusion model changes: the tokens go in through diffusers' `prompt_embeds`.

  FLUX.1 (T5-XXL):   prompt_embeds = aligned tokens; the pooled CLIP-text vector is that of "".
  CogVideoX (T5-XXL): the transformer was trained on exactly `max_text_seq_length` (226) text tokens;
                      aligned tokens come first, then the pipeline's own T5 embedding of the text
                      prompt (with its padding), cut to that length.
  Wan2.1 (UMT5-XXL):  same idea with Wan's layout: real tokens, then zeros up to 512; the aligner
                      must have been trained against the UMT5 decoder.
  ReasonDiffPipeline: Wan's layout, in a mode whose DiT reads the prompt: "wan" by default (the base
                      model, image as first frame); "no_multi_prompt" with a `narration=` (the image's
                      position) also takes them, the AlignFormer reading the tokens as every frame's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import PIL.Image
import torch

from ..conditioning import pad_to
from .aligner import Aligner
from .features import clip_image_tokens, lvlm_features

# Appendix B: the instruction that makes Qwen2-VL describe the *next* image of a CoBSAT sequence.
COBSAT_INSTRUCTION = (
    "I give you several words and pictures. First, please analyse what the next picture is. Then give me a detailed "
    "diffusion prompt to describe the next picture. Please only provide me the detailed prompt and start the answer "
    "with 'Create an image'."
)


@torch.no_grad()
def t5_encode(tokenizer, encoder, text: str, max_length: int = 512) -> torch.Tensor:
    """T5 encoder outputs of `text`'s real tokens only (with </s>), `[1, n, D]`: LLME(T) of Eq. 4-5."""
    ids = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")
    device = next(encoder.parameters()).device
    enc = encoder.get_encoder() if hasattr(encoder, "get_encoder") else encoder
    return enc(input_ids=ids["input_ids"].to(device), attention_mask=ids["attention_mask"].to(device)).last_hidden_state


@dataclass
class ThinkDiffLVLM:
    """ThinkDiff-LVLM (Eq. 3): LVLM generates, its generated-token features are aligned."""

    vlm: torch.nn.Module
    processor: object
    aligner: Aligner
    max_new_tokens: int = 64
    sampling: dict | None = None  # generate() options, e.g. features.AUTHORS_SAMPLING; None = greedy

    @torch.no_grad()
    def encode(self, items: Sequence[str | PIL.Image.Image], **generate_kwargs) -> tuple[torch.Tensor, str]:
        """Interleaved images/texts -> (aligned tokens `[1, n, D_t5]`, the LVLM's generated text)."""
        generate_kwargs = {**(self.sampling or {}), **generate_kwargs}
        feats = lvlm_features(self.vlm, self.processor, items, self.max_new_tokens, **generate_kwargs)
        if len(feats.features) == 0:
            raise ValueError("the LVLM generated no tokens; nothing to align")
        device = next(self.aligner.parameters()).device
        return self.aligner(feats.features[None].to(device)), feats.text


@dataclass
class ThinkDiffCLIP:
    """ThinkDiff-CLIP (Eq. 5): f_cat(AN(CLIP(images)), LLME(text))."""

    vision_model: torch.nn.Module
    image_processor: object
    aligner: Aligner
    tokenizer: object  # the T5 tokenizer of the diffusion model's text encoder
    text_encoder: torch.nn.Module  # that T5 encoder (e.g. FluxPipeline.text_encoder_2)
    layer: int | str = -2  # -2 for a CLIP tower; "final" for BLIP-2's EVA ViT-g (the authors' encoder)
    pool: int = 2

    @torch.no_grad()
    def encode(self, images: Sequence[PIL.Image.Image], text: str | None = None) -> torch.Tensor:
        """Images (in order) and optional text -> `[1, images * tokens_per_image + text_tokens, D_t5]`."""
        if not images and not text:
            raise ValueError("ThinkDiff-CLIP needs at least one image or a text")
        device = next(self.aligner.parameters()).device
        parts = []
        if images:
            tokens = clip_image_tokens(self.vision_model, self.image_processor, images, self.layer, self.pool)
            parts.append(self.aligner(tokens.to(device)).reshape(1, -1, self.aligner.config.out_dim))
        if text:
            parts.append(t5_encode(self.tokenizer, self.text_encoder, text).to(device))
        return torch.cat([p.to(parts[0].dtype) for p in parts], dim=1)


# ---------------------------------------------------------------- diffusion decoders
def flux_embeddings(pipe, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """`prompt_embeds` and `pooled_prompt_embeds` for diffusers' FluxPipeline."""
    device = pipe._execution_device
    pooled = pipe._get_clip_prompt_embeds(prompt="", device=device, num_images_per_prompt=1)
    dtype = pipe.transformer.dtype
    return {"prompt_embeds": tokens.to(device=device, dtype=dtype), "pooled_prompt_embeds": pooled.to(dtype)}


def cogvideox_embeddings(pipe, tokens: torch.Tensor, prompt: str = "") -> dict[str, torch.Tensor]:
    """`prompt_embeds` of exactly max_text_seq_length tokens for diffusers' CogVideoXPipeline."""
    length = pipe.transformer.config.max_text_seq_length
    device = pipe._execution_device
    text = pipe._get_t5_prompt_embeds(prompt=prompt, max_sequence_length=length, device=device)
    embeds = torch.cat([tokens.to(text), text], dim=1)[:, :length]
    return {"prompt_embeds": embeds.to(pipe.transformer.dtype)}


def wan_embeddings(pipe, tokens: torch.Tensor, prompt: str = "", max_sequence_length: int = 512) -> dict:
    """`prompt_embeds` for diffusers' Wan pipelines: aligned tokens, the UMT5 tokens of `prompt`, zeros to 512
    (Wan's text layout; its I2V attention finds the image tokens by assuming 512 text tokens)."""
    device = pipe._execution_device
    parts = [tokens.to(device)]
    if prompt:
        parts.append(t5_encode(pipe.tokenizer, pipe.text_encoder, prompt).to(tokens))
    embeds = pad_to(torch.cat(parts, dim=1)[:, :max_sequence_length], max_sequence_length, dim=1)
    return {"prompt_embeds": embeds.to(pipe.transformer.dtype)}


def decoder_kind(pipe) -> str:
    name = type(pipe).__name__
    if name.startswith("Flux"):
        return "flux"
    if name.startswith("CogVideoX"):
        return "cogvideox"
    if name.startswith("Wan") or name.startswith("ReasonDiff"):
        return "wan"
    raise ValueError(f"no ThinkDiff decoder for {name}; supported: FluxPipeline, CogVideoXPipeline, Wan pipelines")


def render(pipe, tokens: torch.Tensor, prompt: str = "", **call_kwargs):
    """Run `pipe` with ThinkDiff's aligned tokens as its prompt; returns the pipeline's output.

    `prompt` is extra text for decoders that append T5 text (CogVideoX, Wan); for FLUX, put text into
    the tokens (ThinkDiffCLIP.encode(images, text)).
    """
    kind = decoder_kind(pipe)
    if kind == "flux":
        embeds = flux_embeddings(pipe, tokens)
    elif kind == "cogvideox":
        embeds = cogvideox_embeddings(pipe, tokens, prompt)
        call_kwargs.setdefault("max_sequence_length", pipe.transformer.config.max_text_seq_length)
    else:
        embeds = wan_embeddings(pipe, tokens, prompt, call_kwargs.get("max_sequence_length", 512))
        if type(pipe).__name__.startswith("ReasonDiff") and ("mode" in call_kwargs or "narration" in call_kwargs):
            from ..pipelines.narrated import generate  # the paper's modes ("no_multi_prompt": the image placed)

            return generate(pipe, **embeds, **call_kwargs)
    return pipe(**embeds, **call_kwargs)
