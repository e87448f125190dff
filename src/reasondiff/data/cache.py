"""The training cache: VAE latents and text embeddings computed once, so training runs neither the VAE nor UMT5.

On disk (`out_dir`):
    meta.json                       shapes, sizes and the settings the cache was built with
    clips.jsonl                     one row per clip: id, shard, caption ids per pixel frame, anchor positions
    texts.jsonl                     one row per distinct caption: id, text, length in tokens
    clips-00000.safetensors         "<clip_id>/latents" [C, F, h, w], "<clip_id>/anchors" [K, C, h, w],
                                    "<clip_id>/image_embeds" [K, N, D_img] (CLIP tokens of each anchor frame)
                                    and, with condition_videos=True, "<clip_id>/condition_videos"
                                    [K, C, F, h, w] (every latent frame of each anchor's zero video)
    texts-00000.safetensors         "<text_id>" [length, D] (UMT5 embeddings without the zero padding)

Anchors: for each clip, K pixel positions are drawn (seeded) and the condition latent of each is
computed exactly as the pipeline computes it at inference (`conditioning.encode_anchor`: the frame encoded
on its own). A training sample picks one of them, so the condition index is
random per sample while the VAE never runs during training. With `condition_videos=True` the whole
encoded zero video of each anchor is kept too, and frame 1 is always among the anchors: what plain
Wan-style I2V conditioning (a baseline, and the "w/o enhanced latents" ablation) trains on.

Resuming: a shard's files are written atomically before its rows are appended to the JSONL
indexes, so a killed run leaves at most an orphan shard that the next run overwrites; clips already
listed in clips.jsonl are skipped.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..faults import checkpoint
from ..frames import check_num_frames
from ..conditioning import encode_anchor, encode_images, encode_texts, encode_video, place_image
from .jsonl import append_rows, read_jsonl, write_atomically

FORMAT = "reasondiff-cache/2"  # /1 (before Dec 2026) held anchors cut from zero videos: rebuild those


@dataclass
class CacheInput:
    """One training clip: frames `[T, H, W, 3]` uint8, one caption per frame, and optionally one caption for
    the whole clip (what a plain I2V model is trained with; default: the middle frame's caption)."""

    clip_id: str
    frames: np.ndarray
    captions: Sequence[str]
    prompt: str | None = None

    @property
    def clip_prompt(self) -> str:
        return self.prompt if self.prompt is not None else self.captions[len(self.captions) // 2]


def stale_cache(path, found) -> str:
    return (f"{path} holds cache format {found!r}, this version reads {FORMAT!r}: caches before reasondiff-cache/2 "
            "hold anchor latents cut from zero videos, which the pipeline no longer uses; build the cache again "
            "into a new folder")


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


def _texts_of_finished_shards(texts_path: Path, next_shard: int) -> list[dict]:
    """texts.jsonl's rows for shards whose clips were recorded. A run killed between appending a shard's text rows
    and its clip rows left rows pointing into a texts file the resumed run rewrites: those are dropped here."""
    rows = read_jsonl(texts_path, repair=True)
    kept = [row for row in rows if row["shard"] < next_shard]
    if len(kept) < len(rows):
        write_atomically(texts_path, "".join(json.dumps(row) + "\n" for row in kept))
    return kept


def _frames_to_video(frames: np.ndarray) -> torch.Tensor:
    """uint8 `[T, H, W, 3]` -> float `[1, 3, T, H, W]` in [-1, 1], the range Wan's VAE expects."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float() / 127.5 - 1.0
    return video[None]


def _check_clip(clip: CacheInput, num_frames: int | None) -> None:
    frames = clip.frames
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"clip {clip.clip_id}: frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    check_num_frames(frames.shape[0])
    if num_frames is not None and frames.shape[0] != num_frames:
        raise ValueError(f"clip {clip.clip_id} has {frames.shape[0]} frames, the cache holds {num_frames}-frame clips")
    if len(clip.captions) != frames.shape[0]:
        raise ValueError(f"clip {clip.clip_id}: {len(clip.captions)} captions for {frames.shape[0]} frames")
    if "/" in clip.clip_id:
        raise ValueError(f"clip id {clip.clip_id!r} must not contain '/'")


@dataclass
class _Encoders:
    """The frozen models a cache is computed with, and the settings that shape what they give."""

    vae: object
    text_encoder: object
    tokenizer: object
    image_encoder: object
    image_processor: object
    anchors_per_clip: int
    condition_videos: bool
    seed: int
    max_sequence_length: int
    dtype: torch.dtype

    def settings(self) -> dict:
        """What meta.json records, and what a resumed run must match."""
        return {"anchors_per_clip": self.anchors_per_clip, "seed": self.seed, "context_len": self.max_sequence_length,
                "dtype": str(self.dtype).removeprefix("torch."), "condition_videos": self.condition_videos}

    def anchor_positions(self, clip_id: str, num_frames: int) -> list[int]:
        """The clip's K condition positions, seeded by clip id (frame 1 among them for condition videos)."""
        rng = random.Random(f"{self.seed}:{clip_id}")
        positions = sorted(rng.sample(range(1, num_frames + 1), min(self.anchors_per_clip, num_frames)))
        if self.condition_videos and 1 not in positions:
            positions = [1, *positions[1:]]
        return positions

    def encode_clip(self, clip: CacheInput, positions: list[int]) -> dict[str, torch.Tensor]:
        """The clip's latents, the condition latent at each anchor (as the pipeline computes it), their CLIP
        tokens and, with condition_videos, each anchor's whole zero video: keyed as clips-*.safetensors holds them."""
        device, num_frames = self.vae.device, clip.frames.shape[0]
        video = _frames_to_video(clip.frames).to(device)
        latents = encode_video(self.vae, video)[0]
        frames = video[0, :, [p - 1 for p in positions]].transpose(0, 1)  # [K, 3, H, W]
        images = [clip.frames[p - 1] for p in positions]
        tensors = {"image_embeds": encode_images(self.image_encoder, self.image_processor, images, device)}
        if self.condition_videos:
            tensors["condition_videos"] = encode_video(self.vae, place_image(frames, positions, num_frames))
        tensors |= {"latents": latents, "anchors": encode_anchor(self.vae, frames)}
        return {f"{clip.clip_id}/{key}": value.to(self.dtype).cpu() for key, value in tensors.items()}

    def encode_texts(self, texts: list[str]) -> list[tuple[torch.Tensor, int]]:
        """Each text's UMT5 embedding without its zero padding (re-padded on load), and its length in tokens."""
        if not texts:
            return []
        embeds, lengths = encode_texts(self.tokenizer, self.text_encoder, texts, self.max_sequence_length,
                                       device=self.vae.device, return_lengths=True)
        return [(emb[:length].to(self.dtype).cpu(), length) for emb, length in zip(embeds, lengths.tolist())]


class _CacheWriter:
    """One cache folder being written: what is already in it, and one shard at a time appended to it."""

    def __init__(self, out: Path, encoders: _Encoders):
        self.out, self.encoders = out, encoders
        self.meta_path, self.clips_path, self.texts_path = out / "meta.json", out / "clips.jsonl", out / "texts.jsonl"
        self.meta = json.loads(self.meta_path.read_text()) if self.meta_path.exists() else None
        settings = encoders.settings()
        if self.meta is not None and self.meta.get("format") != FORMAT:
            raise ValueError(stale_cache(out, self.meta.get("format")))
        if self.meta is not None and any(self.meta.get(k, False) != v for k, v in settings.items()):
            raise ValueError(f"{out} was built with {({k: self.meta.get(k) for k in settings})}, not {settings}")
        finished = read_jsonl(self.clips_path, repair=True)
        self.done = {row["clip_id"] for row in finished}
        self.shard = 1 + max((row["shard"] for row in finished), default=-1)
        self.text_ids = {row["text"]: row["id"] for row in _texts_of_finished_shards(self.texts_path, self.shard)}

    @property
    def num_frames(self) -> int | None:
        """The frames per clip this cache holds (None until its first clip is written)."""
        return self.meta["num_frames"] if self.meta else None

    def write_shard(self, clips: list[CacheInput]) -> None:
        """Encode `clips` and the captions not cached yet, and add them as the next shard."""
        text_tensors, text_rows = self._new_texts(clips)
        clip_tensors, clip_rows = {}, []
        for clip in clips:
            positions = self.encoders.anchor_positions(clip.clip_id, clip.frames.shape[0])
            tensors = self.encoders.encode_clip(clip, positions)
            clip_tensors |= tensors
            clip_rows.append({"clip_id": clip.clip_id, "shard": self.shard,
                              "captions": [self.text_ids[c] for c in clip.captions], "anchor_positions": positions,
                              "prompt": self.text_ids[clip.clip_prompt]})
            if self.meta is None:
                self._write_meta(clip, tensors[f"{clip.clip_id}/latents"])
        self._append(clip_tensors, clip_rows, text_tensors, text_rows)

    def _new_texts(self, clips: list[CacheInput]) -> tuple[dict[str, torch.Tensor], list[dict]]:
        """The shard's captions and prompts that no earlier shard holds, encoded once each and given ids."""
        wanted = (c for clip in clips for c in (*clip.captions, clip.clip_prompt))
        new_texts = [t for t in dict.fromkeys(wanted) if t not in self.text_ids]
        tensors, rows = {}, []
        for text, (embedding, length) in zip(new_texts, self.encoders.encode_texts(new_texts)):
            self.text_ids[text] = len(self.text_ids)
            tensors[str(self.text_ids[text])] = embedding
            rows.append({"id": self.text_ids[text], "text": text, "length": length, "shard": self.shard})
        return tensors, rows

    def _write_meta(self, clip: CacheInput, latents: torch.Tensor) -> None:
        self.meta = {"format": FORMAT, **self.encoders.settings(), "num_frames": clip.frames.shape[0],
                     "latent_shape": list(latents.shape), "text_dim": self.encoders.text_encoder.config.d_model}
        write_atomically(self.meta_path, json.dumps(self.meta, indent=2) + "\n")

    def _append(self, clip_tensors, clip_rows, text_tensors, text_rows) -> None:
        """Shard files first (atomically), then the index rows: a kill leaves at most files the next run redoes."""
        _atomic_save(clip_tensors, self.out / f"clips-{self.shard:05d}.safetensors")
        checkpoint()
        _atomic_save(text_tensors or {"_empty": torch.zeros(0)}, self.out / f"texts-{self.shard:05d}.safetensors")
        checkpoint()
        append_rows(self.texts_path, text_rows)
        checkpoint()  # a kill here leaves text rows of a shard without clips: the next run drops and redoes them
        append_rows(self.clips_path, clip_rows)
        checkpoint()
        self.done.update(row["clip_id"] for row in clip_rows)
        self.shard += 1


@torch.no_grad()
def write_cache(
    out_dir: str | Path,
    clips: Iterable[CacheInput],
    *,
    vae,
    text_encoder,
    tokenizer,
    image_encoder,
    image_processor,
    anchors_per_clip: int = 4,
    condition_videos: bool = False,
    seed: int = 0,
    max_sequence_length: int = 512,
    clips_per_shard: int = 64,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> Path:
    """Encode `clips` into a training cache at `out_dir` (created or resumed). Returns `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    encoders = _Encoders(vae, text_encoder, tokenizer, image_encoder, image_processor, anchors_per_clip,
                         condition_videos, seed, max_sequence_length, dtype)
    writer = _CacheWriter(out, encoders)
    with tqdm(desc="caching clips", unit="clip", disable=not progress) as bar:
        for shard in _shards(clips, writer.done, writer.num_frames, clips_per_shard):
            writer.write_shard(shard)
            bar.update(len(shard))
    return out


def _shards(
    clips: Iterable[CacheInput], done: set[str], num_frames: int | None, size: int
) -> Iterator[list[CacheInput]]:
    """The clips not cached yet, checked and grouped `size` at a time (a repeated id is taken once)."""
    pending: list[CacheInput] = []
    for clip in clips:
        if clip.clip_id in done or any(p.clip_id == clip.clip_id for p in pending):
            continue
        _check_clip(clip, num_frames)
        num_frames = clip.frames.shape[0]
        pending.append(clip)
        if len(pending) == size:
            yield pending
            pending = []
    if pending:
        yield pending
