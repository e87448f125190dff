"""Narrator-error augmentation: train the model not to trust every frame's narrative blindly.

At inference the narratives come from an MLLM that sometimes says nothing useful about a moment. The
authors' training prepares for it: with probability p, the prompts of three latent frames of a clip
are replaced by one generic sentence. The sentence is encoded once with the model's own text encoder
(the same function the cache uses) and stored next to the cache, so no process encodes text while
training. Which clips and which frames are drawn from each sample's own random stream, so resumed and
multi-process runs replay the same choices.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..conditioning import encode_texts, padded_lengths


def _text_encoder(model: str):
    if model == "tiny":
        from ..models import tiny_wan

        components = tiny_wan.wan_components(seed=0)
        return components["tokenizer"], components["text_encoder"]
    from transformers import AutoTokenizer, UMT5EncoderModel

    return (AutoTokenizer.from_pretrained(model, subfolder="tokenizer"),
            UMT5EncoderModel.from_pretrained(model, subfolder="text_encoder"))


def generic_embedding(cache_dir: Path, model: str, sentence: str, context_len: int,
                      accelerator) -> tuple[torch.Tensor, int]:
    """`sentence` as UMT5 embeds `[context_len, D]` (zero past its length) and its length in tokens, encoded once
    on the main process."""
    path = Path(cache_dir) / f"generic-{hashlib.sha256(f'{model}:{sentence}'.encode()).hexdigest()[:16]}.safetensors"
    if accelerator.is_main_process and not path.is_file():
        tokenizer, encoder = _text_encoder(model)
        with torch.no_grad():
            embeds, lengths = encode_texts(tokenizer, encoder, [sentence], context_len, device="cpu",
                                           return_lengths=True)
        tmp = path.with_suffix(".tmp")
        save_file({"embeds": embeds[0].float().contiguous(), "length": lengths[0]}, str(tmp))
        tmp.replace(path)
    accelerator.wait_for_everyone()
    saved = load_file(str(path))
    if "length" not in saved:  # written before lengths were stored: Wan's zero padding tells it
        return saved["embeds"], int(padded_lengths(saved["embeds"]))
    return saved["embeds"], int(saved["length"])


def latent_frame_of_pixels(num_pixel_frames: int) -> torch.Tensor:
    """Wan's grouping: pixel frame 0 alone, then groups of four per latent frame."""
    pixels = torch.arange(num_pixel_frames)
    return torch.where(pixels == 0, 0, (pixels - 1) // 4 + 1)


def replace_frame_prompts(text_embeds: torch.Tensor, text_lengths: torch.Tensor, caption_index: torch.Tensor,
                          generic: tuple[torch.Tensor, int], generators: list[torch.Generator], p: float, frames: int):
    """With probability `p` per sample, point every pixel frame of `frames` random latent frames at the `generic`
    (embeds, length) sentence (added as one more caption). Returns new (text_embeds, text_lengths, caption_index)."""
    generic, generic_length = generic
    batch, slots = text_embeds.shape[:2]
    latent = latent_frame_of_pixels(caption_index.shape[1])
    num_latent = int(latent.max()) + 1
    caption_index = caption_index.clone()
    for b, g in enumerate(generators):
        if torch.rand((), generator=g).item() >= p:
            continue
        chosen = torch.randperm(num_latent, generator=g)[:frames]
        caption_index[b, torch.isin(latent, chosen)] = slots
    extra = generic.to(text_embeds)[None, None].expand(batch, 1, *generic.shape)
    lengths = torch.cat([text_lengths, text_lengths.new_full((batch, 1), generic_length)], dim=1)
    return torch.cat([text_embeds, extra], dim=1), lengths, caption_index
