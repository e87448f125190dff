"""VLM token features for ThinkDiff, and their storage as sharded safetensors.

ThinkDiff-LVLM (§3.3) aligns the deep features of the tokens the LVLM *generates* -- read after its
final RMSNorm -- not of its input tokens: reasoning happens in the generation. The authors collected
them with a patched vLLM fork; here transformers' own `generate(output_hidden_states=True)` does it.
At decoding step t the model's last position holds the final-norm feature from which generated
token y_t was predicted, so n generated tokens give exactly n features, x_t <-> y_t (the one-to-one
correspondence that random masked training then breaks, see `masking.py`). `source="input"` keeps
the features of the prompt's tokens instead: the Table 3 "using input tokens" ablation.

ThinkDiff-CLIP (§3.4) uses CLIP vision tokens, 2x2 average-pooled on the patch grid, with the CLS
token kept in front.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import PIL.Image
import torch
import torch.nn.functional as F

from ..data.jsonl import write_atomically
from ..faults import checkpoint

# Appendix B: the prompts ThinkDiff-LVLM's training data was generated with (one drawn per image).
DESCRIBE_PROMPTS = (
    "Describe the image concisely.",
    "Provide a brief description of the given image.",
    "Offer a succinct explanation of the picture presented.",
    "Summarize the visual content of the image.",
    "Give a short and clear explanation of the subsequent image.",
    "Share a concise interpretation of the image provided.",
    "Present a compact description of the photo's key features.",
    "Relay a brief, clear account of the picture shown.",
    "Render a clear and concise summary of the photo.",
    "Write a terse but informative summary of the picture.",
    "Create a compact narrative representing the image presented.",
    "Generate a prompt that can recreate the image in a 2D diffusion model.",
    "Provide a descriptive prompt to reproduce the given image using a diffusion model.",
    "Create a prompt suitable for a 2D diffusion model to generate the same image.",
    "Summarize the visual details as a prompt for a 2D diffusion model.",
    "Write a clear prompt to guide a 2D diffusion model in recreating the image.",
)

FORMAT = "thinkdiff-features-v1"
# How the authors let Qwen2-VL answer (their vLLM settings); `lvlm_features(..., **AUTHORS_SAMPLING)`.
AUTHORS_SAMPLING = {"do_sample": True, "temperature": 0.6, "top_p": 0.9}


@dataclass
class TokenFeatures:
    """One sample: features `[n, D]`, and the text they belong to.

    For generated-token features, `token_ids[i]` is the token predicted from `features[i]` and
    `offsets[i]:offsets[i+1]` its characters in `text`, so a split at token k is a split of the text.
    For CLIP or input-token features `token_ids`/`offsets` are empty and `text` is the whole target.
    """

    features: torch.Tensor
    text: str
    token_ids: torch.Tensor | None = None
    offsets: torch.Tensor | None = None

    @property
    def token_aligned(self) -> bool:
        return (self.offsets is not None and self.token_ids is not None and len(self.offsets) == len(self.features) + 1
                and len(self.token_ids) == len(self.features))


def chat_messages(items: Sequence[str | PIL.Image.Image]) -> tuple[list[dict], list[PIL.Image.Image]]:
    """An interleaved list of texts and images as one user turn of a chat template, and its images in order."""
    content, images = [], []
    for item in items:
        if isinstance(item, PIL.Image.Image):
            content.append({"type": "image"})
            images.append(item)
        else:
            content.append({"type": "text", "text": str(item)})
    return [{"role": "user", "content": content}], images


def _char_offsets(tokenizer, ids: list[int]) -> torch.Tensor:
    """offsets[i] = characters of decode(ids[:i]); made monotonic (a partial UTF-8 byte may decode longer)."""
    lengths = [len(tokenizer.decode(ids[:i], skip_special_tokens=True)) for i in range(len(ids) + 1)]
    return torch.cummax(torch.tensor(lengths, dtype=torch.long), 0).values


@torch.no_grad()
def lvlm_features(model, processor, items: Sequence[str | PIL.Image.Image], max_new_tokens: int = 64,
                  source: str = "generated", **generate_kwargs) -> TokenFeatures:
    """Let the LVLM answer an interleaved image/text input and return its final-norm token features.

    source="generated" (the paper): one feature per generated token (EOS and what follows dropped).
    source="input" (Table 3 ablation): one feature per input token; the generated text is the target.
    """
    if source not in ("generated", "input"):
        raise ValueError(f"source must be 'generated' or 'input', got {source!r}")
    messages, images = chat_messages(items)
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[prompt], images=images or None, return_tensors="pt").to(model.device)
    generate_kwargs.setdefault("do_sample", False)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, output_hidden_states=True,
                         return_dict_in_generate=True, **generate_kwargs)
    prompt_len = inputs["input_ids"].shape[1]
    new_ids = out.sequences[0, prompt_len:].tolist()
    stop = set(_as_list(model.generation_config.eos_token_id)) | {processor.tokenizer.pad_token_id}
    n = next((i for i, t in enumerate(new_ids) if t in stop), len(new_ids))
    new_ids = new_ids[:n]
    text = processor.tokenizer.decode(new_ids, skip_special_tokens=True)
    # out.hidden_states[t][-1]: the last layer's output *after the final norm* at decoding step t;
    # step 0 covers the whole prompt, its last position predicts the first new token.
    if source == "input":
        return TokenFeatures(features=out.hidden_states[0][-1][0].float().cpu(), text=text)
    feats = torch.stack([step[-1][0, -1] for step in out.hidden_states[:n]]) if n else \
        out.hidden_states[0][-1].new_zeros(0, out.hidden_states[0][-1].shape[-1])
    return TokenFeatures(features=feats.float().cpu(), text=text, token_ids=torch.tensor(new_ids, dtype=torch.long),
                         offsets=_char_offsets(processor.tokenizer, new_ids))


def _as_list(x) -> list:
    return [] if x is None else list(x) if isinstance(x, (list, tuple)) else [x]


@torch.no_grad()
def clip_image_tokens(vision_model, image_processor, images: Sequence[PIL.Image.Image], layer: int | str = -2,
                      pool: int = 2) -> torch.Tensor:
    """Vision tokens `[B, 1 + (g/pool)^2, D]`: CLS, then the g x g patch grid average-pooled by `pool` (§3.4's
    "2D pooling"; `pool=1` keeps every patch).

    `layer=-2` (a CLIP vision tower) follows BLIP-2/LAVIS: the tower without its last block.
    `layer="final"` is the authors' EVA ViT-g path: BLIP-2's vision model (transformers `Blip2VisionModel`),
    its last layer after the post-LayerNorm, i.e. the model's `last_hidden_state`.
    """
    pixels = image_processor(images=list(images), return_tensors="pt")["pixel_values"]
    pixels = pixels.to(device=vision_model.device, dtype=vision_model.dtype)
    if layer == "final":
        hidden = vision_model(pixel_values=pixels).last_hidden_state
    elif isinstance(layer, int):
        hidden = vision_model(pixel_values=pixels, output_hidden_states=True).hidden_states[layer]
    else:
        raise ValueError(f"layer must be a hidden-state index or 'final', got {layer!r}")
    cls, patches = hidden[:, :1], hidden[:, 1:]
    grid = int(round(patches.shape[1] ** 0.5))
    if grid * grid != patches.shape[1]:
        raise ValueError(f"{patches.shape[1]} patch tokens do not form a square grid")
    patches = patches.transpose(1, 2).reshape(hidden.shape[0], hidden.shape[-1], grid, grid)
    pooled = F.avg_pool2d(patches, pool).flatten(2).transpose(1, 2)
    return torch.cat([cls, pooled], dim=1)


VISION_LAYERS = {"clip": -2, "eva": "final"}  # the feature each vision tower gives ThinkDiff-CLIP


# ---------------------------------------------------------------- sharded storage
class ShardedFeatureWriter:
    """Writes samples into `shard-00000.safetensors`, ... plus `index.json`, resumably.

    A shard is written to a temporary name and renamed into place, and only then recorded in the
    index (also replaced atomically), so a killed job leaves complete shards only; `done` tells a
    restarted job how many samples to skip.
    """

    def __init__(self, out_dir: str | Path, shard_size: int = 1000, dtype: torch.dtype = torch.float16,
                 metadata: dict[str, Any] | None = None):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.shard_size, self.dtype = shard_size, dtype
        index = self.dir / "index.json"
        self.index = json.loads(index.read_text()) if index.is_file() else \
            {"format": FORMAT, "metadata": metadata or {}, "shards": []}
        self.buffer: list[TokenFeatures] = []

    @property
    def done(self) -> int:
        return sum(s["count"] for s in self.index["shards"])

    def add(self, sample: TokenFeatures) -> None:
        self.buffer.append(sample)
        if len(self.buffer) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        from safetensors.torch import save_file

        tensors, texts = {}, []
        for j, s in enumerate(self.buffer):
            tensors[f"{j}.features"] = s.features.to(self.dtype).contiguous()
            if s.token_aligned:
                tensors[f"{j}.token_ids"] = s.token_ids.long().contiguous()
                tensors[f"{j}.offsets"] = s.offsets.long().contiguous()
            texts.append(s.text)
        name = f"shard-{len(self.index['shards']):05d}.safetensors"
        tmp = self.dir / f".{name}.tmp"
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "texts": json.dumps(texts)})
        os.replace(tmp, self.dir / name)
        checkpoint()  # a kill here leaves a shard the index does not list: the next run writes it again
        self.index["shards"].append({"file": name, "start": self.done, "count": len(self.buffer)})
        write_atomically(self.dir / "index.json", json.dumps(self.index, indent=1))
        checkpoint()
        self.buffer = []


def extract_to_shards(inputs: Sequence[Any], compute: Callable[[int, Any], TokenFeatures], out_dir: str | Path,
                      shard_size: int = 1000, dtype: torch.dtype = torch.float16, metadata: dict | None = None,
                      progress: bool = True, limit: int | None = None) -> int:
    """Run `compute(i, inputs[i])` for every input not yet stored under `out_dir`; returns samples stored.

    `limit` stops after that many samples *in this call* (a job with a time budget; the next call resumes).
    """
    from tqdm.auto import tqdm

    writer = ShardedFeatureWriter(out_dir, shard_size, dtype, metadata)
    start = writer.done
    stop = len(inputs) if limit is None else min(len(inputs), start + limit)
    for i in tqdm(range(start, stop), initial=start, total=len(inputs), disable=not progress, desc="extract"):
        writer.add(compute(i, inputs[i]))
    writer.flush()
    return writer.done


class FeatureDataset(torch.utils.data.Dataset):
    """Read-only view of a feature folder written by `ShardedFeatureWriter`; items are `TokenFeatures`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        index = self.root / "index.json"
        if not index.is_file():
            raise ValueError(f"{self.root} holds no ThinkDiff features (index.json missing)")
        self.index = json.loads(index.read_text())
        self.shards = self.index["shards"]
        self.metadata = self.index.get("metadata", {})

    def __len__(self) -> int:
        return sum(s["count"] for s in self.shards)

    @lru_cache(maxsize=4)  # noqa: B019 - a dataset lives as long as its training run
    def _shard(self, k: int):
        from safetensors import safe_open

        with safe_open(str(self.root / self.shards[k]["file"]), framework="pt") as f:
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open, not a dict
            texts = json.loads(f.metadata()["texts"])
        return tensors, texts

    def __getitem__(self, i: int) -> TokenFeatures:
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = next(k for k, s in enumerate(self.shards) if s["start"] <= i < s["start"] + s["count"])
        tensors, texts = self._shard(k)
        j = i - self.shards[k]["start"]
        return TokenFeatures(features=tensors[f"{j}.features"].float(), text=texts[j],
                             token_ids=tensors.get(f"{j}.token_ids"), offsets=tensors.get(f"{j}.offsets"))
