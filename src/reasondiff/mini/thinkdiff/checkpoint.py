"""The one way ThinkDiff-mini's trainers (T5 decoder, VLM, text-to-image decoder) write a checkpoint."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch


def save_checkpoint(model, optimizer, step: int, losses: list[float], out: Path, name: str = "model") -> None:
    """`OUT/checkpoint/{name, optimizer.pt, state.json}`, written beside it and renamed into place: a run killed at
    any moment leaves the previous complete checkpoint (the old one is moved aside before the new one lands)."""
    tmp, final, old = out / "checkpoint.tmp", out / "checkpoint", out / "checkpoint.old"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp / name)  # safetensors
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "losses": losses}))
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def resume_state(out: Path, optimizer) -> tuple[int, list[float]]:
    """(step, losses so far) of `OUT/checkpoint`, with the optimizer's state loaded; (0, []) for a fresh run."""
    ckpt = out / "checkpoint"
    if not ckpt.is_dir():
        return 0, []
    optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
    state = json.loads((ckpt / "state.json").read_text())
    return state["step"], state["losses"]


def run_steps(model, optimizer, loss_at, step: int, steps: int, losses: list[float], out: Path, checkpoint_every: int,
              log, name: str = "model", max_grad_norm: float | None = None) -> int:
    """The three trainers' loop: `loss_at(step)` (a step's data depends on the step only, so a resume is exact),
    an optimizer step, a checkpoint and a log line every `checkpoint_every` steps and at the end. Returns the step."""
    while step < steps:
        loss = loss_at(step)
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        step += 1
        if step % checkpoint_every == 0 or step == steps:
            save_checkpoint(model, optimizer, step, losses, out, name)
            log(f"step {step} loss {sum(losses[-checkpoint_every:]) / len(losses[-checkpoint_every:]):.4f}")
    return step
