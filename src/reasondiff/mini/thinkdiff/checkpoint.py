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
