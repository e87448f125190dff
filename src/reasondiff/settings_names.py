"""One vocabulary for both trainers' settings: the names diffusers' and accelerate's training scripts use.

The old spellings still read, with a DeprecationWarning naming the new key, so existing configs and scripts keep
working while they are updated.
"""

from __future__ import annotations

import warnings
from typing import Any

RENAMED = {"lr": "learning_rate", "grad_clip": "max_grad_norm", "keep_checkpoints": "keep_last"}


def renamed_settings(settings: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """`settings` with each old key under its new name (warned once per key); both spellings at once is an error,
    since which of the two values was meant cannot be known."""
    out = dict(settings)
    for old, new in RENAMED.items():
        if old not in out:
            continue
        if new in out:
            raise ValueError(f"{where}: {old!r} and {new!r} are the same setting; keep {new!r} only")
        warnings.warn(f"{where}: {old!r} is deprecated, use {new!r}", DeprecationWarning, stacklevel=3)
        out[new] = out.pop(old)
    return out
