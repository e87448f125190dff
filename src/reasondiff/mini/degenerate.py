"""Videos that must not score: the degenerate baselines of every table and the measures' adversarial suite.

A measure is trusted only as far as the cheapest way to fool it fails. Each function makes, from a case's
true clip, a video a lazy or broken model could produce: the condition image held still, a two-shot hard
cut (with and without the contact frame pasted between the shots), the story reversed or shuffled, or the
same story with the wrong object or agent. Measures v3 added the stories without a cause that v2 passed
(`ADVERSARIAL_V3`, issue #31): an agent parked beside the object throughout, one that pops in beside it two
frames before the change, the first half of the story then its last frame frozen, an agent that vanishes right
after the contact, a crossfade from the first to the last frame, an agent that fades in beside the object (a
ghost), the object changing three frames before the agent arrives, and the story played forward then
backward. `python -m reasondiff.mini.degenerate BENCH KIND OUT` writes
`OUT/<case id>.mp4` for every case of a benchmark, ready for `reasondiff eval score`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import typer

from ..console import script_app
from .world import AGENTS, OBJECTS, EventScript

ADVERSARIAL_V3 = ("parked_agent", "agent_pops_in", "frozen_half", "vanishes_after_contact", "crossfade", "ghost_fade_in",
                  "early_change", "forward_backward")
KINDS = ("truth", "static", "hard_cut", "hard_cut_pasted_agent", "reversed", "shuffled", "wrong_object", "wrong_agent",
         *ADVERSARIAL_V3)


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
    if kind in ADVERSARIAL_V3:
        return _without_cause(kind, script, frames, size)
    raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")


def _without_cause(kind: str, script: EventScript, frames: np.ndarray, size: int) -> np.ndarray:
    """The stories v2 passed with no cause in them (module docstring), each from the case's own scene and timing."""
    n, contact = len(frames), script.contact
    touch = script.state(contact).agent_x  # where the agent stands when it touches the object
    intact, changed, _ = OBJECTS[script.object]

    def drawn(t: int, agent_x, state_changed: bool) -> np.ndarray:
        return script.render_state(agent_x, changed if state_changed else intact, False, size)

    if kind == "parked_agent":  # beside the object from the first frame to the last while it changes
        return np.stack([drawn(t, touch, t >= contact) for t in range(n)])
    if kind == "agent_pops_in":  # nothing, then the agent beside the object two frames before the change
        video = frames.copy()
        video[:contact] = frames[0]
        video[contact - 2:contact] = drawn(0, touch, False)
        return video
    if kind == "frozen_half":  # the story up to the change, then its aftermath held: the agent vanishes at the change
        return np.concatenate([frames[:contact], np.repeat(drawn(0, None, True)[None], n - contact, 0)])
    if kind == "vanishes_after_contact":  # the true contact, then the aftermath with no agent at all
        return np.concatenate([frames[:contact + 1], np.stack([drawn(t, None, True) for t in range(contact + 1, n)])])
    if kind in ("crossfade", "ghost_fade_in"):  # one frame dissolving into another: each between frame a blend
        end = frames[-1] if kind == "crossfade" else drawn(0, touch, False)
        last = n - 1 if kind == "crossfade" else contact - 1
        alpha = np.clip(np.arange(n) / last, 0, 1)[:, None, None, None]
        video = np.round((1 - alpha) * frames[0].astype(np.float64) + alpha * end).astype(np.uint8)
        if kind == "ghost_fade_in":  # then the true story from the contact on
            video[contact:] = frames[contact:]
        return video
    if kind == "early_change":  # the object changes three frames before the agent gets there
        return np.stack([drawn(t, script.state(t).agent_x, t >= contact - 3) for t in range(n)])
    if kind == "forward_backward":  # the story at double speed, then played back to the start
        forward = list(range(0, n, 2))
        order = (forward + forward[-2::-1])[:n]
        return frames[order + [0] * (n - len(order))]
    raise ValueError(f"unknown kind {kind!r}")


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
