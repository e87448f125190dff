"""Models by name: what `--model NAME` loads, its defaults and limits, and the backend that renders it.

The core knows `tiny` (Wan2.1's classes with random weights: an install check) and any hub id or diffusers
folder, whose pipeline class (`model_index.json`) picks the backend. Every other name is registered by its own
package through `register_model` (ReasonDiff-mini registers "mini" from `reasondiff.mini`, a plugin), so nothing
here compares against a name it does not own. Light on purpose: no torch until a model is built.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .limits import SizeLimits, limits_of_folder

# diffusers pipeline class -> the backend that renders a narration on it ("wan-vace", "ltx": training-free keyframe
# backends, pipelines/backends/, which put the image at the narrator's frame and tell the script in one prompt)
BACKENDS = {"WanImageToVideoPipeline": "reasondiff", "ReasonDiffPipeline": "reasondiff",
            "WanVACEPipeline": "wan-vace", "LTXConditionPipeline": "ltx", "LTX2ConditionPipeline": "ltx2"}
KEYFRAME_BACKENDS = ("wan-vace", "ltx", "ltx2")
# a folder's defaults by backend, where they are not Wan2.1's (LTXConditionPipeline's, LTX2ConditionPipeline's own)
BACKEND_DEFAULTS = {"ltx": dict(frames=161, height=512, width=704, steps=50, guidance=3.0),
                    "ltx2": dict(frames=121, height=512, width=768, steps=30, guidance=3.0)}


@dataclass(frozen=True)
class ModelSpec:
    """One `--model` name. `folder` returns a diffusers folder to load (shipped weights, a hub snapshot); `build`
    makes the pipeline instead (random test models). The sizes, steps, guidance and narrator are the defaults a
    command fills in; `trained_frames` the clip lengths it saw (others get a warning); `notice` is printed before
    it loads; `limits` reads its largest video without loading it."""

    name: str
    description: str = ""
    folder: Callable[[], Path] | None = None
    build: Callable[[], Any] | None = None
    limits: Callable[[], Any] | None = None
    frames: int = 81
    height: int = 480
    width: int = 832
    steps: int = 50
    guidance: float = 5.0
    narrator: str | None = None
    trained_frames: tuple[int, ...] = ()
    notice: str | None = None
    missing: str = "reinstall reasondiff"
    backend: str = "reasondiff"
    default: bool = False  # the model commands use when given none (the shipped offline one)
    extra: dict = field(default_factory=dict)

    def defaults(self, **given) -> dict:
        """Frames, height, width, steps, guidance and narrator, the `given` ones that are not None first."""
        own = {"frames": self.frames, "height": self.height, "width": self.width, "steps": self.steps,
               "guidance": self.guidance, "narrator": self.narrator}
        return {**own, **{key: value for key, value in given.items() if value is not None}}

    def size_limits(self) -> SizeLimits | None:
        """The largest video it can make, read without loading it (None when unknown before loading)."""
        if self.limits is not None:
            return self.limits()
        return limits_of_folder(self.folder() if self.folder is not None else Path(self.name))

    def source(self) -> str:
        """What `from_pretrained` loads: the spec's folder (which must hold a pipeline), else its name (a hub id)."""
        if self.folder is None:
            return self.name
        folder = self.folder()
        if not (folder / "model_index.json").is_file():
            raise ValueError(f"the {self.name} model is missing from {folder}: {self.missing}")
        return str(folder)

    def frames_warning(self, frames: int) -> str | None:
        """A warning when `frames` is not a clip length the model was trained on (None when it is, or unknown)."""
        if not self.trained_frames or frames in self.trained_frames:
            return None
        lengths = ", ".join(str(n) for n in self.trained_frames)
        return (f"warning: {self.name} was trained on {lengths}-frame videos; at {frames} frames expect a video that "
                f"dissolves into smears (pass --frames {self.trained_frames[0]})")


_SPECS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec, *, replace_existing: bool = False) -> None:
    """Make `--model spec.name` mean `spec`."""
    if spec.name in _SPECS and not replace_existing and _SPECS[spec.name] != spec:
        raise ValueError(f"a model named {spec.name!r} is already registered")
    _SPECS[spec.name] = spec


def registered_models() -> list[ModelSpec]:
    return list(_SPECS.values())


def default_model() -> str:
    """The registered default (the shipped offline model), else the first registered one."""
    defaults = [spec.name for spec in _SPECS.values() if spec.default]
    return (defaults or list(_SPECS))[0]


def backend_of(folder: Path) -> str:
    """The backend for a diffusers folder, from its pipeline class; ValueError naming an unsupported one."""
    index = folder / "model_index.json"
    try:
        name = json.loads(index.read_text()).get("_class_name")
    except (OSError, ValueError) as err:
        raise ValueError(f"{folder} is not a diffusers model folder: cannot read {index.name} ({err})") from None
    if name not in BACKENDS:
        raise ValueError(f"{folder} holds a {name}, which ReasonDiff cannot render; supported: "
                         f"{', '.join(sorted(BACKENDS))}")
    return BACKENDS[name]


def model_spec(model: str) -> ModelSpec:
    """The spec for a `--model` value: a registered name, else a hub id or local folder with Wan2.1's defaults
    (its backend read from the folder when it is one; a hub id's once downloaded)."""
    if model in _SPECS:
        return _SPECS[model]
    path = Path(model)
    if path.is_dir():
        backend = backend_of(path)
        return ModelSpec(name=model, folder=lambda: path, backend=backend, **BACKEND_DEFAULTS.get(backend, {}))
    return ModelSpec(name=model)


def _tiny_pipeline():
    from ..models import tiny_wan
    from .pipeline_reasondiff import ReasonDiffPipeline

    return ReasonDiffPipeline(**tiny_wan.wan_components(seed=0), alignformer=tiny_wan.alignformer(seed=0))


def _tiny_limits() -> SizeLimits | None:
    from ..models import tiny_wan
    from .limits import limits_from_configs

    return limits_from_configs(tiny_wan.transformer_config(), 8)


TINY = ModelSpec(
    name="tiny", description="random weights: an install smoke test, not a video model",
    build=_tiny_pipeline, limits=_tiny_limits, frames=17, height=64, width=64, steps=4,
    notice=("NOTICE: --model tiny is an install smoke test: Wan2.1-I2V's real classes with tiny RANDOM weights "
            "and an untrained AlignFormer. The video is noise. The trained offline model is the default --model."),
)
register_model(TINY)
__all__ = ["BACKENDS", "BACKEND_DEFAULTS", "KEYFRAME_BACKENDS", "ModelSpec", "TINY", "backend_of", "default_model",
           "model_spec", "register_model", "registered_models"]
