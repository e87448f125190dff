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
computed exactly as the pipeline computes it at inference (the frame placed in a zero video, VAE,
latent frame of that position). A training sample picks one of them, so the condition index is
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
from ..frames import check_num_frames, pixel_to_latent_index
from ..conditioning import encode_images, encode_texts, encode_video, place_image
from .jsonl import append_rows, read_jsonl, write_atomically

FORMAT = "reasondiff-cache/1"


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
    meta_path, clips_path, texts_path = out / "meta.json", out / "clips.jsonl", out / "texts.jsonl"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
    settings = {"anchors_per_clip": anchors_per_clip, "seed": seed, "context_len": max_sequence_length,
                "dtype": str(dtype).removeprefix("torch."), "condition_videos": condition_videos}
    if meta is not None and any(meta.get(k, False) != v for k, v in settings.items()):
        raise ValueError(f"{out} was built with {({k: meta.get(k) for k in settings})}, not {settings}")

    finished = read_jsonl(clips_path, repair=True)
    done = {row["clip_id"] for row in finished}
    shard = 1 + max((row["shard"] for row in finished), default=-1)
    text_ids = {row["text"]: row["id"] for row in _texts_of_finished_shards(texts_path, shard)}
    device = vae.device

    pending: list[CacheInput] = []
    expected_frames = meta["num_frames"] if meta else None

    def flush():
        nonlocal shard, meta
        if not pending:
            return
        clip_tensors, clip_rows = {}, []
        wanted = (c for clip in pending for c in (*clip.captions, clip.clip_prompt))
        new_texts = [t for t in dict.fromkeys(wanted) if t not in text_ids]
        text_tensors, text_rows = {}, []
        if new_texts:
            embeds, lengths = encode_texts(tokenizer, text_encoder, new_texts, max_sequence_length, device=device,
                                           return_lengths=True)
            for text, emb, length in zip(new_texts, embeds, lengths.tolist()):
                text_ids[text] = len(text_ids)
                text_tensors[str(text_ids[text])] = emb[:length].to(dtype).cpu()  # the zeros past it: re-padded on load
                text_rows.append({"id": text_ids[text], "text": text, "length": length, "shard": shard})
        for clip in pending:
            num_frames = clip.frames.shape[0]
            video = _frames_to_video(clip.frames).to(device)
            latents = encode_video(vae, video)[0]
            rng = random.Random(f"{seed}:{clip.clip_id}")
            positions = sorted(rng.sample(range(1, num_frames + 1), min(anchors_per_clip, num_frames)))
            if condition_videos and 1 not in positions:
                positions = [1, *positions[1:]]
            frames = video[0, :, [p - 1 for p in positions]].transpose(0, 1)  # [K, 3, H, W]
            anchor_videos = place_image(frames, positions, num_frames)
            anchor_latents = encode_video(vae, anchor_videos)
            index = torch.tensor([pixel_to_latent_index(p, num_frames) for p in positions], device=device)
            anchors = anchor_latents[torch.arange(len(positions), device=device), :, index]  # [K, C, h, w]
            image_embeds = encode_images(image_encoder, image_processor, [clip.frames[p - 1] for p in positions], device)
            clip_tensors[f"{clip.clip_id}/image_embeds"] = image_embeds.to(dtype).cpu()
            if condition_videos:
                clip_tensors[f"{clip.clip_id}/condition_videos"] = anchor_latents.to(dtype).cpu()
            clip_tensors[f"{clip.clip_id}/latents"] = latents.to(dtype).cpu()
            clip_tensors[f"{clip.clip_id}/anchors"] = anchors.to(dtype).cpu()
            clip_rows.append({"clip_id": clip.clip_id, "shard": shard,
                              "captions": [text_ids[c] for c in clip.captions], "anchor_positions": positions,
                              "prompt": text_ids[clip.clip_prompt]})
            if meta is None:
                meta = {"format": FORMAT, **settings, "num_frames": num_frames,
                        "latent_shape": list(latents.shape), "text_dim": text_encoder.config.d_model}
                write_atomically(meta_path, json.dumps(meta, indent=2) + "\n")
        _atomic_save(clip_tensors, out / f"clips-{shard:05d}.safetensors")
        checkpoint()
        _atomic_save(text_tensors or {"_empty": torch.zeros(0)}, out / f"texts-{shard:05d}.safetensors")
        checkpoint()
        append_rows(texts_path, text_rows)
        checkpoint()  # a kill here leaves text rows of a shard without clips: the next run drops and redoes them
        append_rows(clips_path, clip_rows)
        checkpoint()
        done.update(row["clip_id"] for row in clip_rows)
        bar.update(len(pending))
        pending.clear()
        shard += 1

    bar = tqdm(desc="caching clips", unit="clip", disable=not progress)
    for clip in clips:
        if clip.clip_id in done or any(p.clip_id == clip.clip_id for p in pending):
            continue
        _check_clip(clip, expected_frames)
        expected_frames = clip.frames.shape[0]
        pending.append(clip)
        if len(pending) == clips_per_shard:
            flush()
    flush()
    bar.close()
    return out
