"""What the commands that generate (`generate`, `demo`) share to get a pipeline, as `narrator.cli.open_narrator`
is for narrators: the notices first, then the model, or one red line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import typer

from ..console import fail
from .settings import Generation


def load_or_fail(job: Generation, alignformer: Path | None, lora: Path | None, device: str, dtype: str):
    """`(pipeline, device)` for `job.model`, after printing `job.notices` (tiny's noise, an untrained frame count)."""
    from .loading import load_pipeline

    for notice in job.notices:
        typer.secho(notice, fg=typer.colors.YELLOW, err=True)
    try:
        return load_pipeline(job.model, alignformer, lora, device, dtype)
    except (OSError, ValueError) as err:
        fail(f"could not load model {job.model!r}: {err}")
