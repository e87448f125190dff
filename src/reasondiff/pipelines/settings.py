"""What a generation is asked for, checked once: the one home of the modes, the `--model` help and the notices,
and `prepare_generation`, which `generate`, `demo`, the studio and `eval run` all call before any model loads.

Light on purpose (no torch, no diffusers): the command line's help and its cheap checks import it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..device import check_device
from ..frames import check_num_frames
from .modes import MODE_HELP, MODES, MODES_HELP, NARRATED_MODES  # noqa: F401 (re-exported: the CLI's help)
from .registry import ModelSpec, model_spec, registered_models

MAX_STEPS = 1000  # the flow-matching scheduler's training timesteps: more steps than that repeat timesteps
HUB = ModelSpec(name="a hub id or folder")  # Wan2.1's defaults, what an unregistered --model gets


def _defaults(attribute: str) -> str:
    """'Default: 17 for mini; 17 for tiny; 81 for a hub id or folder', from the registered models (the help is
    read after `import reasondiff` has registered its plugins')."""
    return "Default: " + "; ".join(f"{getattr(spec, attribute):g} for {spec.name}"
                                   for spec in (*registered_models(), HUB)) + "."


MODEL_HELP = ("A registered model (" + "; ".join(f"'{spec.name}': {spec.description}" for spec in registered_models())
              + "), a hub id, or a local diffusers folder (Wan2.1-I2V or ReasonDiff). Default: the shipped one.")
SIZE_HELP = {
    "frames": "Frames to generate, 4k+1 (17, 33, 81). " + _defaults("frames"),
    "height": "Height in pixels, a multiple of 16. " + _defaults("height"),
    "width": "Width in pixels, a multiple of 16. " + _defaults("width"),
    "steps": "Denoising steps. " + _defaults("steps"),
    "guidance": "Classifier-free guidance scale (1 or less: none). " + _defaults("guidance") + " Models trained "
                "without caption dropout (the mini ones) have no unconditional model to guide from.",
}


# What torch.Generator.manual_seed takes is -2**63 .. 2**64-1, a negative seed standing for 2**64 plus it (so
# -1 and 2**64-1 give the same video); we take the unsigned range, where each number is its own seed.
MAX_SEED = 2**64 - 1
MAX_FPS = 1000  # far beyond any player; ffmpeg's frame rate is a 32-bit fraction and fails past 2**31 after the run


@dataclass(frozen=True)
class Generation:
    """Checked settings: the model's defaults filled in, and the notices to show before loading it."""

    model: str
    modes: tuple[str, ...]
    frames: int
    height: int
    width: int
    steps: int
    guidance: float
    narrator: str | None
    notices: tuple[str, ...] = field(default=())


def check_modes(modes: Sequence[str], narrator) -> tuple[str, ...]:
    """`modes` as a tuple, or ValueError naming the unknown ones (or the missing narrator `rewrite` needs)."""
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown or not modes:
        raise ValueError(f"unknown mode {', '.join(map(repr, unknown)) or '(none given)'}; choose one of "
                         f"{', '.join(MODES)}")
    if "rewrite" in modes and narrator is None:
        raise ValueError("mode 'rewrite' needs a narrator to rewrite the prompt (--narrator SPEC)")
    return tuple(modes)


def check_size(frames: int, height: int, width: int, steps: int, model: str | None = None) -> None:
    """ValueError unless the video is one Wan can make (4k+1 frames, multiples of 16) and, for a `model` whose
    config can be read without loading it, one that fits its rotary position table."""
    check_num_frames(frames)
    if height % 16 or width % 16 or height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive multiples of 16, got {height}x{width}")
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be at least 1 and at most {MAX_STEPS} (Wan's scheduler has {MAX_STEPS} "
                         f"timesteps), got {steps}")
    limits = model_spec(model).size_limits() if model is not None else None
    if limits is not None:
        limits.check(frames, height, width, f"model {model!r}")


def check_numbers(guidance: float | None = None, seed: int | None = None, fps: float | None = None) -> None:
    """ValueError naming the option for a value no generation can use: non-finite or negative guidance (inf
    made an all-black video and was recorded as null), a seed torch.Generator cannot take (it failed only
    after the model loaded), a frame rate of 0 or less (0 was written as 16 fps, -1 stopped ffmpeg after the
    whole generation) or above MAX_FPS. None: not given."""
    if guidance is not None and not (math.isfinite(guidance) and guidance >= 0):
        raise ValueError(f"--guidance must be a finite number >= 0 (1 or less: no guidance), got {guidance}")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise ValueError(f"--seed must be within 0..{MAX_SEED} (what torch.Generator takes), got {seed}")
    if fps is not None and not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise ValueError(f"--fps must be a frame rate above 0 and at most {MAX_FPS}, got {fps}")


def prepare_generation(model: str, modes: Sequence[str] = ("reasondiff",), *, narrator: str | None = None,
                       model_narrator: bool = False, prompt: str | None = None, frames: int | None = None,
                       height: int | None = None, width: int | None = None,
                       steps: int | None = None, guidance: float | None = None, seed: int | None = None,
                       fps: float | None = None, device: str | None = None, dtype: str = "auto") -> Generation:
    """The settings for generating with `model`, the ones not given taken from the model's defaults, checked
    cheapest first (no file read but the model's config, no model loaded). Raises ValueError with one line.

    `model_narrator`: use the model's own narrator (mini: `synthworld:`) when no `narrator` is named.
    `seed`, `fps`, `device` and `dtype`: checked only (`check_numbers`, `device.check_device`: torch is imported
    for the device alone), for the commands that take them."""
    check_numbers(guidance, seed, fps)
    if device is not None:
        check_device(device, dtype)
    spec = model_spec(model)
    settings = spec.defaults(frames=frames, height=height, width=width, steps=steps, guidance=guidance)
    if narrator is None and model_narrator:
        narrator = settings["narrator"]
    modes = check_modes(modes, narrator)
    if prompt is not None and not prompt.strip():
        raise ValueError("the prompt is empty")
    check_size(settings["frames"], settings["height"], settings["width"], settings["steps"], model)
    notices = (spec.notice, spec.frames_warning(settings["frames"]))
    return Generation(model, modes, settings["frames"], settings["height"], settings["width"], settings["steps"],
                      settings["guidance"], narrator, tuple(n for n in notices if n))
