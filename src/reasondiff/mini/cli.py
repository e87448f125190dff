"""`reasondiff eval build-synthworld`: the SynthWorld-Bench v2 builder as a command (wired in by `reasondiff.cli`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..console import EXIT_FAILED, fail
from .bench import MIN_DISTANCE, SPLITS, TRAIN_CLIPS


def build_synthworld(
    split: str = typer.Option(..., help=f"One of {', '.join(SPLITS)}."),
    cases: int = typer.Option(200, help="Number of cases (counterfactual: groups of four share an image)."),
    seed: int = typer.Option(0, help="Seed of the draws; another seed gives other held-out scenes."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for benchmark.jsonl, images/, truth/, report.json."),
    frames: int = typer.Option(17, help="Frames per true clip (4k+1; the mini model is trained at 17)."),
    train_clips: int = typer.Option(TRAIN_CLIPS, help="Size of the training set cases are kept away from."),
    min_distance: float = typer.Option(MIN_DISTANCE, help="Smallest RMS distance (0-255) from any training frame "
                                       "(image) and clip (true clip) a case may have."),
) -> None:
    """Write a SynthWorld-Bench v2 split whose scenes no training clip shows.

    Each row of benchmark.jsonl holds id, image, prompt, position (the 1-based true frame of the image),
    frames, truth (the rendered true clip, .mp4) and the world's ground truth. Score any model's videos of
    it with `reasondiff eval score`.

    Example:

      reasondiff eval build-synthworld --split unpaired --cases 200 --seed 1 --out bench/unpaired
    """
    from ..frames import check_num_frames
    from .bench import build_synthworld as build

    try:
        check_num_frames(frames)
        report = build(out, split, cases, seed, frames, train_clips=train_clips, min_distance=min_distance,
                       log=lambda message: None)
    except (ValueError, RuntimeError) as err:
        fail(str(err))
    except OSError as err:  # a full disk, a file-size limit: the previous benchmark.jsonl and report.json stay
        fail(str(err), EXIT_FAILED)
    typer.echo(json.dumps(report, indent=2))
    typer.echo(f"wrote {out / 'benchmark.jsonl'} ({report['cases']} cases; nearest training frame "
               f"{report['nn_image_distance']['min']:.1f}+, clip {report['nn_clip_distance']['min']:.1f}+)")
