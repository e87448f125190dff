"""One way from a `--model` name to a ready pipeline, shared by `generate`, `eval run` and the studio.

Names: "mini" (ReasonDiff-mini, shipped in the package, trained on SynthWorld), "tiny" (Wan2.1's classes with
tiny random weights: an install check), or a hub id / local folder in the diffusers layout (Wan2.1-I2V, or
a saved ReasonDiff pipeline). A stage-1 LoRA, given with `lora` or found as `pytorch_lora_weights.safetensors`
at the top of a model folder, is loaded as ReasonDiff's adapter, so the baseline modes run the base model.
"""

from __future__ import annotations

from pathlib import Path

from ..device import resolve_device

LORA_FILE = "pytorch_lora_weights.safetensors"
MINI_STEPS = 10
# The mini models were trained without caption dropout, so they have no unconditional model for classifier-free
# guidance to extrapolate from: at guidance 5 ReasonDiff-mini v2 lost the image at every narrated frame but the
# first (17 dB against 25-30 dB without guidance, docs/mini.md "The v2 DiT"). Real Wan2.1 was trained for it: 5.0.
MINI_GUIDANCE = 1.0
WAN_GUIDANCE = 5.0
MAX_STEPS = 1000  # the flow-matching scheduler's training timesteps: more steps than that repeat timesteps
MINI_TRAINED_FRAMES = (17,)  # the clip length of SynthWorld's training set (docs/mini.md)
_NAMED: dict[str, tuple] = {}  # --model name -> (folder function, what to do when the folder is missing)


def register_model(name: str, folder, missing: str = "reinstall reasondiff") -> None:
    """Make `--model NAME` load the pipeline folder `folder()` returns. A world that ships its own model
    (`reasondiff.mini` registers "mini") plugs in here, so this layer does not import it."""
    _NAMED[name] = (folder, missing)


def named_folder(model: str) -> Path | None:
    """The folder a registered `--model` name stands for (None for any other name)."""
    return Path(_NAMED[model][0]()) if model in _NAMED else None


def _from_hub(download, repo_id: str, **kwargs) -> Path | None:
    """`download(repo_id, **kwargs)` as a Path, or None when the repo has no such file or cannot be reached
    (offline without a cached copy): the caller then goes on without the optional part, as for a local folder."""
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError, LocalEntryNotFoundError
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        return Path(download(repo_id, **kwargs))
    except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError, HFValidationError):
        return None


def find_alignformer(model: str | Path) -> Path | None:
    """The `alignformer/` folder of a saved ReasonDiff pipeline: a local folder, or a hub id whose repo has one
    (only that folder is downloaded, with `allow_patterns`). None for a plain Wan2.1 folder or repo."""
    from huggingface_hub import snapshot_download

    root = Path(str(model))
    if not root.is_dir():
        root = _from_hub(snapshot_download, str(model), allow_patterns=["alignformer/*"])
    folder = root / "alignformer" if root is not None else None
    return folder if folder is not None and (folder / "config.json").is_file() else None


def find_lora(model: str | Path) -> Path | None:
    """The folder holding a stage-1 LoRA (`pytorch_lora_weights.safetensors`) at the top of a local folder or a
    hub repo (that one file downloaded); None when there is none."""
    from huggingface_hub import hf_hub_download

    root = Path(str(model))
    if root.is_dir():
        return root if (root / LORA_FILE).is_file() else None
    found = _from_hub(hf_hub_download, str(model), filename=LORA_FILE)
    return found.parent if found is not None else None


def load_pipeline(model: str, alignformer: str | Path | None = None, lora: str | Path | None = None,
                  device: str = "auto", dtype: str = "auto"):
    """Returns `(pipeline, device)`; raises OSError/ValueError with the reason when the model cannot load."""
    from ..models.alignformer import AlignFormer
    from .pipeline_reasondiff import ReasonDiffPipeline

    device, torch_dtype = resolve_device(device, dtype)
    if model == "tiny":  # float32: a test model, any other dtype is moot
        from ..models import tiny_wan

        pipe = ReasonDiffPipeline(**tiny_wan.wan_components(seed=0), alignformer=tiny_wan.alignformer(seed=0))
    else:
        folder = named_folder(model)
        if folder is not None:
            if not (folder / "model_index.json").is_file():
                raise ValueError(f"the shipped {model} model is missing from {folder}: {_NAMED[model][1]}")
            model = str(folder)
        # a plain Wan2.1 folder needs an AlignFormer from elsewhere; a saved ReasonDiff pipeline brings its own
        extra = {"alignformer": AlignFormer.from_pretrained(alignformer, dtype=torch_dtype)} if alignformer else {}
        pipe = ReasonDiffPipeline.from_pretrained(model, dtype=torch_dtype, **extra)
        if lora is None:
            lora = find_lora(model)
    if lora is not None:
        pipe.load_reasondiff_lora(str(lora))
    return pipe.to(device), device


def model_defaults(model: str, **given) -> dict:
    """Generation settings for `model` (frames, height, width, steps, guidance, narrator), the `given` ones that
    are not None taking precedence. The mini and tiny models work at SynthWorld's 64x64x17, real Wan2.1 at the
    paper's 480x832x81 with 50 steps and guidance 5; the mini model runs without guidance (see MINI_GUIDANCE)
    and its narrator is the world's own."""
    if model == "mini":
        defaults = {"frames": 17, "height": 64, "width": 64, "steps": MINI_STEPS, "guidance": MINI_GUIDANCE,
                    "narrator": "synthworld:"}
    elif model == "tiny":
        defaults = {"frames": 17, "height": 64, "width": 64, "steps": 4, "guidance": WAN_GUIDANCE, "narrator": None}
    else:
        defaults = {"frames": 81, "height": 480, "width": 832, "steps": 50, "guidance": WAN_GUIDANCE,
                    "narrator": None}
    return {**defaults, **{key: value for key, value in given.items() if value is not None}}


def frames_warning(model: str, frames: int) -> str | None:
    """A warning when `frames` is not a length the model was trained on; None when it is, or when unknown.

    ReasonDiff-mini saw only 17-frame clips: at 81 frames it runs, and its video dissolves into smears."""
    trained = MINI_TRAINED_FRAMES if model == "mini" else None
    if trained is None or frames in trained:
        return None
    lengths = ", ".join(str(n) for n in trained)
    return (f"warning: {model} was trained on {lengths}-frame videos; at {frames} frames expect a video that "
            f"dissolves into smears (pass --frames {trained[0]})")
