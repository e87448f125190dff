"""Videos that must not score: the degenerate baselines of every table and the measures' adversarial suite.

A measure is trusted only as far as the cheapest way to fool it fails. Each function makes, from a case's
true clip, a video a lazy or broken model could produce: the condition image held still, a two-shot hard
cut (with and without the contact frame pasted between the shots), the story reversed or shuffled, or the
same story with the wrong object or agent. `python -m reasondiff.mini.degenerate BENCH KIND OUT` writes
`OUT/<case id>.mp4` for every case of a benchmark, ready for `reasondiff eval score`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import typer

from ..console import script_app
from .world import AGENTS, OBJECTS, EventScript

KINDS = ("truth", "static", "hard_cut", "hard_cut_pasted_agent", "reversed", "shuffled", "wrong_object", "wrong_agent")


def _other(options, current: str, seed: int) -> str:
    choices = [o for o in options if o != current]
    return choices[seed % len(choices)]


def degenerate(kind: str, script: EventScript, position: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 `[F, H, W, 3]`: the `kind` video of the case whose true clip is `script`, image at 1-based `position`."""
    frames = script.frames(size)
    image = frames[position - 1]
    if kind == "truth":
        return frames
    if kind == "static":
        return np.repeat(image[None], len(frames), axis=0)
    if kind in ("hard_cut", "hard_cut_pasted_agent"):  # before shot, cut at the contact, aftermath shot
        video = np.concatenate([np.repeat(frames[:1], script.contact, 0),
                                np.repeat(frames[-1:], len(frames) - script.contact, 0)])
        if kind == "hard_cut_pasted_agent":
            video[script.contact] = frames[script.contact]
        video[position - 1] = image  # the anchor is the condition image itself: the cut is all that is wrong
        return video
    if kind == "reversed":
        return frames[::-1].copy()
    if kind == "shuffled":
        return frames[np.random.default_rng(seed).permutation(len(frames))]
    if kind == "wrong_object":
        return replace(script, object=_other(OBJECTS, script.object, seed)).frames(size)
    if kind == "wrong_agent":
        return replace(script, agent=_other(AGENTS, script.agent, seed)).frames(size)
    raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")


def write_videos(benchmark: str, kind: str, out_dir: str) -> int:
    """One video per case of a SynthWorld-Bench v2 benchmark.jsonl; returns how many were written."""
    from pathlib import Path

    from ..data.jsonl import read_jsonl
    from ..media import save_video

    rows = read_jsonl(Path(benchmark))
    for number, row in enumerate(rows):
        video = degenerate(kind, EventScript(**row["world"]), row["position"], seed=number)
        save_video(video.astype(np.float32) / 255.0, Path(out_dir) / f"{row['id']}.mp4", fps=8)
    return len(rows)


def _known_kind(kind: str) -> str:
    if kind not in KINDS:
        raise typer.BadParameter(f"{kind!r} is not one of {', '.join(KINDS)}")
    return kind


app = script_app(__doc__)


@app.command()
def main(
    benchmark: str = typer.Argument(..., metavar="BENCH", help="A benchmark.jsonl (`reasondiff eval` benchmark set)."),
    kind: str = typer.Argument(..., metavar="KIND", callback=_known_kind, help=f"One of {', '.join(KINDS)}."),
    out: str = typer.Argument(..., metavar="OUT", help="Folder for OUT/<case id>.mp4."),
) -> None:
    """Write the degenerate video of `kind` for every case of a benchmark."""
    print(f"wrote {write_videos(benchmark, kind, out)} videos to {out}")


if __name__ == "__main__":
    app()
