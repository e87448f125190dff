"""CLIP Score (Text) and CLIP Score (Image), as the paper defines them (Appendix B.3).

- Text: each generated frame against the ground-truth caption of the matching real frame, cosine
  similarity of CLIP embeddings, averaged over frames. Captions of a clip with a different frame count are
  matched to generated frames by nearest time (first to first, last to last).
- Image: each generated frame against the condition image, averaged.

Scores are plain mean cosines in [-1, 1] (the paper's ~0.2 / ~0.5), not the ×100 "CLIPScore" of Hessel et
al. The paper uses openai/clip-vit-large-patch14; any transformers `CLIPModel` folder or hub id loads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import PIL.Image
import torch

from .frame_format import resample_indices, to_uint8_frames

DEFAULT_CLIP = "openai/clip-vit-large-patch14"


def mean_paired_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over rows of cos(a_i, b_i): frame i against its own caption."""
    if a.shape != b.shape:
        raise ValueError(f"paired features must have the same shape, got {list(a.shape)} and {list(b.shape)}")
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1).mean())


def mean_cosine_to(a: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean over rows of cos(a_i, reference): every frame against the one condition image."""
    return mean_paired_cosine(a, reference.reshape(1, -1).expand_as(a))


def _features(output) -> torch.Tensor:
    # transformers 4 returns the projected tensor; transformers 5 a ModelOutput whose pooler_output holds it.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class CLIPScore:
    """Embeds frames, images and captions with a transformers CLIP model.

    Args:
        model: a `transformers.CLIPModel`.
        processor: its `CLIPProcessor` (image processor + tokenizer).
        batch_size: frames per forward pass.
    """

    def __init__(self, model, processor, batch_size: int = 32):
        self.model = model.eval()
        self.processor = processor
        self.batch_size = batch_size
        self.max_length = model.config.text_config.max_position_embeddings

    @classmethod
    def from_pretrained(cls, path: str = DEFAULT_CLIP, device: str | torch.device = "cpu",
                        torch_dtype: torch.dtype = torch.float32, **kwargs) -> CLIPScore:
        """Load `CLIPModel` + `CLIPProcessor` from a hub id or a local folder (the paper: clip-vit-large-patch14)."""
        from transformers import CLIPModel, CLIPProcessor

        model = CLIPModel.from_pretrained(path, dtype=torch_dtype).to(device)
        processor = CLIPProcessor.from_pretrained(path)
        return cls(model, processor, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def image_features(self, images: Sequence[PIL.Image.Image] | np.ndarray) -> torch.Tensor:
        """CLIP image embeddings `[N, D]` of PIL images or uint8/float frames `[N, H, W, 3]`."""
        if not isinstance(images, (list, tuple)):
            images = [PIL.Image.fromarray(f) for f in to_uint8_frames(images)]
        dtype = next(self.model.parameters()).dtype
        chunks = []
        for start in range(0, len(images), self.batch_size):
            batch = self.processor.image_processor(images=list(images[start:start + self.batch_size]),
                                                   return_tensors="pt")
            pixels = batch["pixel_values"].to(self.device, dtype)
            chunks.append(_features(self.model.get_image_features(pixel_values=pixels)).float().cpu())
        return torch.cat(chunks)

    @torch.no_grad()
    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """CLIP text embeddings `[N, D]`; captions longer than CLIP's 77 tokens are truncated, as CLIP was trained."""
        if any(not isinstance(t, str) or not t.strip() for t in texts):
            raise ValueError("captions must be non-empty strings")
        tokens = self.processor.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                          return_tensors="pt").to(self.device)
        return _features(self.model.get_text_features(**tokens)).float().cpu()

    def text_score(self, frames, captions: Sequence[str]) -> float:
        """CLIP Score (Text): mean cos(frame k, caption of real frame k) over generated frames."""
        frames = to_uint8_frames(frames)
        if not captions:
            raise ValueError("CLIP Score (Text) needs the ground-truth captions of the real frames")
        matched = [captions[i] for i in resample_indices(len(captions), len(frames))]
        unique = list(dict.fromkeys(matched))  # encode each distinct caption once
        text = self.text_features(unique)
        rows = torch.stack([text[unique.index(c)] for c in matched])
        return mean_paired_cosine(self.image_features(frames), rows)

    def image_score(self, frames, image: PIL.Image.Image) -> float:
        """CLIP Score (Image): mean cos(frame k, condition image) over generated frames."""
        return mean_cosine_to(self.image_features(to_uint8_frames(frames)), self.image_features([image.convert("RGB")])[0])
