"""ThinkDiff training: only the aligner learns; the T5 encoder-decoder is frozen (§3.2).

Both variants minimise the decoder's cross-entropy against text it must predict:
  ThinkDiff-LVLM, Eq. 2:  y' = LLMD(AN(f_mask(LVLMG(I, T))))          target: the second part y^2
  ThinkDiff-CLIP, Eq. 4:  y' = LLMD(f_cat(AN(CLIP(I)), LLME(T_1)))     target: the caption's rest T_2
The aligned tokens are handed to the decoder *as if they were the encoder's outputs*
(`encoder_outputs=`), which is exactly the interface a diffusion decoder reads its prompt through.

The trainer runs on `accelerate` (one CPU process in tests; DDP/FSDP/DeepSpeed for users). Every
random choice of a step (which samples, where each is split) comes from a generator seeded by
(seed, step), so a resumed run repeats the steps an uninterrupted run would have taken; with the
optimiser state restored by `accelerator.load_state`, resume is exact. Checkpoints are written
into a temporary folder and renamed into place: a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, model_validator
from transformers.modeling_outputs import BaseModelOutput

from ..faults import checkpoint
from ..settings_names import renamed_settings
from .features import TokenFeatures
from .masking import split_caption, split_tokens


@dataclass
class Batch:
    features: torch.Tensor  # [B, L, D_vlm], zero-padded
    feature_mask: torch.Tensor  # [B, L] long, 1 = real
    labels: torch.Tensor  # [B, N] T5 token ids of the targets, -100 = padding
    prefix_ids: torch.Tensor | None = None  # ThinkDiff-CLIP: T5 ids of the caption's first part T_1
    prefix_mask: torch.Tensor | None = None
    inputs: list[str] = field(default_factory=list)  # for inspection: what each sample was conditioned on
    targets: list[str] = field(default_factory=list)


def _pad(features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(f) for f in features)
    out = features[0].new_zeros(len(features), length, features[0].shape[-1])
    mask = torch.zeros(len(features), length, dtype=torch.long)
    for b, f in enumerate(features):
        out[b, : len(f)], mask[b, : len(f)] = f, 1
    return out, mask


def _labels(tokenizer, texts: list[str], max_tokens: int) -> torch.Tensor:
    ids = tokenizer(texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    return ids["input_ids"].masked_fill(ids["attention_mask"] == 0, -100)


def collate_lvlm(samples: Sequence[TokenFeatures], tokenizer, generator: torch.Generator, masked: bool = True,
                 max_target_tokens: int = 64) -> Batch:
    """Random masked training (§3.3): features of tokens [0, k) in, the text of tokens [k, n) re-tokenised
    for T5 as target. masked=False (Table 3 ablation) or samples that are not token-aligned (input-token
    features) use every feature and the whole generated text."""
    feats, inputs, targets = [], [], []
    for s in samples:
        if masked and s.token_aligned and len(s.features) >= 2:
            split = split_tokens(len(s.features), generator)
            cut = int(s.offsets[split.k])
            feats.append(s.features[: split.k])
            inputs.append(s.text[:cut])
            targets.append(s.text[cut:].strip() or s.text[cut:])
        else:
            feats.append(s.features)
            inputs.append(s.text)
            targets.append(s.text)
    x, mask = _pad(feats)
    return Batch(x, mask, _labels(tokenizer, targets, max_target_tokens), inputs=inputs, targets=targets)


def collate_clip(samples: Sequence[TokenFeatures], tokenizer, generator: torch.Generator,
                 max_target_tokens: int = 64) -> Batch:
    """Caption split at a random word (§3.4): T_1 goes to the T5 encoder, T_2 is the target."""
    feats, prefixes, targets = [], [], []
    for s in samples:
        first, rest = split_caption(s.text, generator)
        feats.append(s.features)
        prefixes.append(first)
        targets.append(rest)
    x, mask = _pad(feats)
    prefix = tokenizer(prefixes, padding=True, truncation=True, max_length=max_target_tokens, return_tensors="pt")
    return Batch(x, mask, _labels(tokenizer, targets, max_target_tokens), prefix["input_ids"],
                 prefix["attention_mask"], inputs=prefixes, targets=targets)


def thinkdiff_loss(t5, aligner, batch: Batch, tokenizer=None, encoder_weight: float = 0.0) -> torch.Tensor:
    """Cross-entropy of the frozen decoder reading aligned tokens as encoder outputs (Eq. 2 / Eq. 4), plus
    `encoder_weight` times `encoder_distance` (not in the paper; 0 leaves Eq. 2 alone)."""
    device = next(t5.parameters()).device
    aligned = tokens = aligner(batch.features.to(device))
    feature_mask = mask = batch.feature_mask.to(device)
    if batch.prefix_ids is not None:  # Eq. 4: f_cat(AN(CLIP(I)), LLME(T_1)); the encoder is frozen
        with torch.no_grad():
            text = t5.get_encoder()(input_ids=batch.prefix_ids.to(device),
                                    attention_mask=batch.prefix_mask.to(device)).last_hidden_state
        tokens = torch.cat([tokens, text.to(tokens.dtype)], dim=1)
        mask = torch.cat([mask, batch.prefix_mask.to(device)], dim=1)
    out = t5(encoder_outputs=BaseModelOutput(last_hidden_state=tokens), attention_mask=mask,
             labels=batch.labels.to(device))
    if not encoder_weight:
        return out.loss
    return out.loss + encoder_weight * encoder_distance(t5, tokenizer, aligned, feature_mask, batch.inputs)


def encoder_distance(t5, tokenizer, aligned: torch.Tensor, mask: torch.Tensor, texts: list[str]) -> torch.Tensor:
    """Mean squared distance between aligned token i and the frozen T5 encoder's state of token i of the same
    text (the text the features were generated for, or its masked prefix).

    Why: the T5 decoder reads back captions from aligned tokens that lie far from anything its encoder writes
    (ThinkDiff-mini: cosine 0.08 to the encoding of the same caption), and a diffusion decoder trained on that
    encoder's states cannot read them (docs/thinkdiff.md, "Aligned tokens and the encoder's space"). Position by
    position, so it assumes the VLM writes in the T5's tokens, as ThinkDiff-mini's VLM and T5 share the world
    tokenizer; for other pairs it has no meaning."""
    device = aligned.device
    ids = tokenizer(texts, padding=True, truncation=True, max_length=aligned.shape[1] + 1, return_tensors="pt")
    with torch.no_grad():
        states = t5.get_encoder()(input_ids=ids.input_ids.to(device),
                                  attention_mask=ids.attention_mask.to(device)).last_hidden_state
    length = min(aligned.shape[1], states.shape[1])
    both = (mask[:, :length] * ids.attention_mask[:, :length].to(device)).to(aligned.dtype)
    error = (aligned[:, :length] - states[:, :length].to(aligned.dtype)).pow(2).mean(-1)
    return (error * both).sum() / both.sum().clamp(min=1)


class TrainConfig(BaseModel):
    """The aligner trainer's settings, named as the ReasonDiff trainer's (`settings_names`): `lr`, `grad_clip`,
    `save_every`, `keep_checkpoints` and `warmup_steps` still read, with a DeprecationWarning."""

    model_config = ConfigDict(extra="forbid")

    variant: str = "lvlm"  # "lvlm" (Eq. 2) or "clip" (Eq. 4)
    steps: int = 25_000  # the paper: 25k steps (LVLM), 100k (CLIP)
    batch_size: int = 96  # total over processes; the paper: 96 (LVLM), 168 (CLIP)
    learning_rate: float = 1e-4
    weight_decay: float = 0.0  # the authors: 0.05 (AUTHORS_SCHEDULE)
    lr_warmup_steps: int = 0  # linear warm-up from 0 to learning_rate; the authors: 2000
    min_lr: float | None = None  # cosine down to it after the warm-up; None = constant; the authors: 8e-5
    max_grad_norm: float | None = 1.0
    masked: bool = True  # random masked training (§3.3); False = Table 3 "w/o masked training"
    encoder_weight: float = 0.0  # + this times `encoder_distance` (lvlm only; not in the paper)
    max_target_tokens: int = 64
    seed: int = 0
    checkpoint_every: int = 1000
    keep_last: int = 2
    mixed_precision: str = "no"

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed_settings(data, "ThinkDiff training config") if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _encoder_weight_needs_lvlm(self) -> "TrainConfig":
        if self.encoder_weight and self.variant != "lvlm":
            raise ValueError("encoder_weight compares generated-token features with the text's encoding: lvlm only")
        return self


# The authors' optimiser settings (their LAVIS config): for real-model runs, `TrainConfig(**AUTHORS_SCHEDULE)`.
AUTHORS_SCHEDULE = {"lr_warmup_steps": 2000, "min_lr": 8e-5, "weight_decay": 0.05}


def learning_rate(config: TrainConfig, step: int) -> float:
    """The learning rate of 0-based `step`: linear warm-up, then constant or cosine to `min_lr` at the last step.

    A pure function of the step (not a stateful scheduler), so a resumed run, under any number of
    processes, sets exactly the rate an uninterrupted one would."""
    if step < config.lr_warmup_steps:
        return config.learning_rate * (step + 1) / config.lr_warmup_steps
    if config.min_lr is None:
        return config.learning_rate
    span = max(config.steps - config.lr_warmup_steps - 1, 1)
    progress = min((step - config.lr_warmup_steps) / span, 1.0)
    return config.min_lr + (config.learning_rate - config.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


@lru_cache(maxsize=8)
def _permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> list[int]:
    """The samples of `step`: consecutive slices of one seeded permutation per epoch (a pure function of step)."""
    out = []
    for pos in range(step * batch_size, (step + 1) * batch_size):
        epoch, i = divmod(pos, n)
        out.append(int(_permutation(n, seed, epoch)[i]))
    return out


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step + 1)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    ckpts = sorted((Path(output_dir) / "checkpoints").glob("step-*"))
    return ckpts[-1] if ckpts else None


def step_batch(config: TrainConfig, dataset: Sequence[TokenFeatures], tokenizer, step: int, process_index: int,
               per_process: int) -> Batch:
    """This process's share of `step`'s batch, split as the variant trains: a pure function of (seed, step,
    process), so a resumed run repeats the batches an uninterrupted one would have seen."""
    idx = batch_indices(len(dataset), config.batch_size, step, config.seed)
    idx = idx[process_index * per_process: (process_index + 1) * per_process]
    gen = step_generator(config.seed, step)
    for _ in range(process_index):  # each process draws its own splits from the step's stream
        gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))
    samples = [dataset[i] for i in idx]
    if config.variant == "lvlm":
        return collate_lvlm(samples, tokenizer, gen, config.masked, config.max_target_tokens)
    return collate_clip(samples, tokenizer, gen, config.max_target_tokens)


@dataclass
class TrainResult:
    losses: list[float]  # one mean loss per step, from step 0 (resumed runs include the earlier steps)
    step: int
    aligner_dir: Path


def train(config: TrainConfig, aligner, t5, tokenizer, dataset: Sequence[TokenFeatures], output_dir: str | Path,
          resume: bool = True, progress: bool = True, accelerator=None, stop_after: int | None = None) -> TrainResult:
    """Train `aligner` (only it) against the frozen `t5`; checkpoints and the final aligner go to `output_dir`.

    `stop_after` ends this call after that many steps (as a job killed by its scheduler would; for tests).
    """
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    if config.variant not in ("lvlm", "clip"):
        raise ValueError(f"variant must be 'lvlm' or 'clip', got {config.variant!r}")
    if len(dataset) == 0:
        raise ValueError("the training dataset is empty")
    output_dir = Path(output_dir)
    acc = accelerator or Accelerator(mixed_precision=config.mixed_precision)
    t5.requires_grad_(False).eval().to(acc.device)
    aligner.train()
    optimizer = torch.optim.AdamW(aligner.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    model, optimizer = acc.prepare(aligner, optimizer)

    step, losses = 0, []
    ckpt = latest_checkpoint(output_dir) if resume else None
    if ckpt is not None:
        acc.load_state(str(ckpt))
        state = json.loads((ckpt / "trainer_state.json").read_text())
        step, losses = state["step"], state["losses"]

    per_process = config.batch_size // acc.num_processes
    if per_process * acc.num_processes != config.batch_size:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by {acc.num_processes} processes")
    last = config.steps if stop_after is None else min(config.steps, step + stop_after)
    bar = tqdm(total=config.steps, initial=step, disable=not (progress and acc.is_main_process), desc="thinkdiff")
    while step < last:
        batch = step_batch(config, dataset, tokenizer, step, acc.process_index, per_process)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        with acc.autocast():
            loss = thinkdiff_loss(t5, model, batch, tokenizer, config.encoder_weight)
        acc.backward(loss)
        if config.max_grad_norm:
            acc.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(acc.gather(loss.detach()[None]).mean().item())
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint(acc, output_dir, step, losses, config)
            checkpoint()
    bar.close()

    aligner_dir = output_dir / "aligner"
    if step == config.steps and acc.is_main_process:  # a kill below: the rerun resumes at the last step and redoes it
        acc.unwrap_model(model).save_pretrained(aligner_dir)
        checkpoint()
        (output_dir / "losses.json").write_text(json.dumps(losses))
    acc.wait_for_everyone()
    return TrainResult(losses=losses, step=step, aligner_dir=aligner_dir)


def save_checkpoint(acc, output_dir: Path, step: int, losses: list[float], config: TrainConfig) -> Path:
    """accelerate state + trainer state into `.tmp-step-N`, renamed to `step-N` when complete."""
    root = output_dir / "checkpoints"
    final, tmp = root / f"step-{step:09d}", root / f".tmp-step-{step:09d}"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
    acc.wait_for_everyone()
    acc.save_state(str(tmp))
    if acc.is_main_process:
        state = {"step": step, "losses": losses, "config": config.model_dump()}
        (tmp / "trainer_state.json").write_text(json.dumps(state))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in sorted(root.glob("step-*"))[: -config.keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()
    return final
