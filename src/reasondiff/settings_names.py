"""One vocabulary for every trainer's settings: the names diffusers' and accelerate's training scripts use.

The ReasonDiff trainer (`training.config`), the ThinkDiff aligner trainer (`thinkdiff.training`) and the
ThinkDiff-mini trainers (`mini.thinkdiff`) all read `learning_rate`, `max_grad_norm`, `keep_last`,
`checkpoint_every` and `lr_warmup_steps`. The old spellings still read, with a DeprecationWarning naming the new
key, so existing configs, scripts and command lines keep working while they are updated.

Kept apart on purpose: the ThinkDiff trainers' `steps` is the run's length (it fixes their cosine schedule and
their resumable step-indexed data), while the ReasonDiff trainer's `max_steps` is an optional cap on
`num_epochs`; `min_lr` has no ReasonDiff counterpart.
"""

from __future__ import annotations

import warnings
from typing import Any

RENAMED = {"lr": "learning_rate", "grad_clip": "max_grad_norm", "keep_checkpoints": "keep_last",
           "save_every": "checkpoint_every", "warmup_steps": "lr_warmup_steps"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def renamed_settings(settings: dict[str, Any], where: str = "config", flags: bool = False) -> dict[str, Any]:
    """`settings` with each old key under its new name (warned once per key); both spellings at once is an error,
    since which of the two values was meant cannot be known. `flags`: the keys came from command-line options,
    and the messages spell them as such (`--lr`)."""
    spell = _flag if flags else repr
    out = dict(settings)
    for old, new in RENAMED.items():
        if old not in out:
            continue
        if new in out:
            raise ValueError(f"{where}: {spell(old)} and {spell(new)} are the same setting; keep {spell(new)} only")
        warnings.warn(f"{where}: {spell(old)} is deprecated, use {spell(new)}", DeprecationWarning, stacklevel=3)
        out[new] = out.pop(old)
    return out


def renamed_options(options: dict[str, Any], where: str = "command line") -> dict[str, Any]:
    """Command-line options (None: not given) under the new names, the old flags being hidden aliases. Python
    hides a DeprecationWarning raised outside `__main__`, so this one is always shown: a command's user is who
    must update the script."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", DeprecationWarning)
        return renamed_settings({k: v for k, v in options.items() if v is not None}, where, flags=True)
