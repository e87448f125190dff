"""A `torch.utils.data.Dataset` over the training cache (see `reasondiff.data.cache`)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from safetensors import safe_open

from ..conditioning import pad_to
from .cache import FORMAT, read_jsonl, stale_cache


class CachedClipDataset(torch.utils.data.Dataset):
    """Yields what one training step needs for one clip, with the condition frame drawn per sample.

    The draw is a pure function of (seed, epoch, index), so a resumed run sees the same conditions
    as an uninterrupted one. Each item:
        index            int            position in the dataset (seeds the sample's noise in training)
        latents          [C, F, h, w]   normalised VAE latents of the clip (x1, and c of Eq. 6)
        anchor_latent    [C, h, w]      condition latent, computed as the pipeline computes it
        anchor_position  int            1-based pixel frame of the condition image
        image_embeds     [N, D_img]     CLIP tokens of the condition frame
        text_embeds      [U, L, D]      the clip's distinct captions, zero-padded to L tokens (as Wan pads)
        text_lengths     [U]            each caption's length in tokens (texts.jsonl): the token mask's source
        caption_index    [T]            for each pixel frame, which of the U captions describes it
        prompt_index     int            which of the U captions is the clip's single prompt
        condition_video  [C, F, h, w]   (caches built with condition_videos) the whole encoded zero video

    `anchor="first"` always conditions on frame 1, as plain image-to-video models are trained.
    """

    def __init__(self, cache_dir: str | Path, seed: int = 0, anchor: str = "random"):
        self.root = Path(cache_dir)
        meta_path = self.root / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"no training cache at {self.root} (meta.json missing): build one first")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT:
            raise ValueError(stale_cache(self.root, self.meta.get("format")))
        self.rows = read_jsonl(self.root / "clips.jsonl")
        if not self.rows:
            raise ValueError(f"the training cache at {self.root} holds no clips")
        texts = read_jsonl(self.root / "texts.jsonl")
        self.text_shard = {row["id"]: row["shard"] for row in texts}
        self.text_length = {row["id"]: row["length"] for row in texts}
        if anchor not in ("random", "first"):
            raise ValueError(f"anchor must be 'random' or 'first', got {anchor!r}")
        if anchor == "first" and not self.meta.get("condition_videos"):
            raise ValueError(f"{self.root} has no condition videos: build it with condition_videos=True for first-frame training")
        self.anchor = anchor
        self.seed = seed
        self.epoch = 0
        self._handles: dict[str, object] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self):  # open file handles stay in the process that opened them
        return {**self.__dict__, "_handles": {}}

    def _tensor(self, kind: str, shard: int, key: str) -> torch.Tensor:
        name = f"{kind}-{shard:05d}.safetensors"
        if name not in self._handles:
            self._handles[name] = safe_open(str(self.root / name), framework="pt")
        return self._handles[name].get_tensor(key)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        clip, shard = row["clip_id"], row["shard"]
        if self.anchor == "first":
            choice = row["anchor_positions"].index(1)
        else:
            choice = random.Random(f"{self.seed}:{self.epoch}:{index}").randrange(len(row["anchor_positions"]))
        prompt = row.get("prompt", row["captions"][len(row["captions"]) // 2])
        captions = list(dict.fromkeys([*row["captions"], prompt]))
        text_embeds = torch.stack([
            pad_to(self._tensor("texts", self.text_shard[text_id], str(text_id)).float(), self.meta["context_len"])
            for text_id in captions
        ])
        item = {
            "index": index,
            "latents": self._tensor("clips", shard, f"{clip}/latents").float(),
            "anchor_latent": self._tensor("clips", shard, f"{clip}/anchors")[choice].float(),
            "anchor_position": row["anchor_positions"][choice],
            "image_embeds": self._tensor("clips", shard, f"{clip}/image_embeds")[choice].float(),
            "text_embeds": text_embeds,
            "text_lengths": torch.tensor([self.text_length[text_id] for text_id in captions]),
            "caption_index": torch.tensor([captions.index(c) for c in row["captions"]]),
            "prompt_index": captions.index(prompt),
        }
        if self.meta.get("condition_videos"):
            item["condition_video"] = self._tensor("clips", shard, f"{clip}/condition_videos")[choice].float()
        return item


def collate_clips(items: list[dict]) -> dict:
    """Stack a batch; clips with fewer distinct captions are padded with zero captions nobody points to."""
    most = max(item["text_embeds"].shape[0] for item in items)
    batch = {
        "index": torch.tensor([i["index"] for i in items]),
        "latents": torch.stack([i["latents"] for i in items]),
        "anchor_latent": torch.stack([i["anchor_latent"] for i in items]),
        "anchor_position": torch.tensor([i["anchor_position"] for i in items]),
        "image_embeds": torch.stack([i["image_embeds"] for i in items]),
        "text_embeds": torch.stack([pad_to(i["text_embeds"], most) for i in items]),
        "text_lengths": torch.stack([pad_to(i["text_lengths"], most) for i in items]),
        "caption_index": torch.stack([i["caption_index"] for i in items]),
        "prompt_index": torch.tensor([i["prompt_index"] for i in items]),
    }
    if "condition_video" in items[0]:
        batch["condition_video"] = torch.stack([i["condition_video"] for i in items])
    return batch
