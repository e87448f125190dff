"""Training configuration: one YAML file per run, validated before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..pipelines.settings import NARRATED_MODES
from ..settings_names import renamed_settings


class _Strict(BaseModel):
    """Unknown keys and non-finite numbers (YAML's .nan and .inf) are refused: no setting of a run means them."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class AlignFormerSettings(_Strict):
    """Sizes of a freshly initialised AlignFormer (text_dim and in_channels come from the cache)."""

    hidden_dim: int = 1024
    num_heads: int = 8
    num_cross_stages: int = 2
    ff_mult: int = 4
    patch_size: int = 2


class ToyData(_Strict):
    """Build a toy cache (`reasondiff.data.toy`) at `cache_dir` if none is there; only with `model: tiny`."""

    num_clips: int = 16
    num_frames: int = 17
    size: int = 64
    seed: int = 0


class NarratorError(_Strict):
    """The authors' narrator-error augmentation: with probability `p`, `frames` latent frames of a clip read
    `sentence` instead of their own narratives (stages 1-2 with frame-wise prompts)."""

    p: float = Field(0.5, ge=0.0, le=1.0)
    frames: int = Field(3, ge=1)
    sentence: str = "A video."


class TrainConfig(_Strict):
    stage: Literal[0, 1, 2] = Field(
        description="0: a plain image-to-video DiT (first frame, one prompt), all weights: the base model and "
        "the 'Wan2.1' baseline of a mini world; 1: LoRA on the DiT + AlignFormer (Eq. 1); 2: AlignFormer alone (Eq. 6)"
    )
    model: str = Field("tiny", description="'tiny', or a Wan2.1-I2V diffusers folder / hub id (its transformer)")
    transformer_config: dict | None = Field(
        None, description="stage 0: build a fresh WanTransformer3DModel with these arguments instead of loading `model`"
    )
    conditioning: Literal[NARRATED_MODES] = Field(  # the pipeline's modes that render a frame-wise script
        "reasondiff", description="the paper's ablations (§4.3) as training variants of stages 1 and 2"
    )
    cache_dir: Path
    output_dir: Path
    toy_data: ToyData | None = None
    video_size: tuple[int, int, int] | None = Field(
        None, description="[frames, height, width] of the training clips: what --plan assumes before the cache exists"
    )
    init_from: Path | None = Field(None, description="an export folder (alignformer/ + LoRA); required by stage 2")
    alignformer: AlignFormerSettings = AlignFormerSettings()
    narrator_error: NarratorError | None = Field(None, description="off unless set (the authors use p 0.5, 3 frames)")

    lora_rank: int = Field(32, ge=1)
    lora_alpha: float = 32.0
    lora_target_modules: list[str] = ["to_q", "to_k", "to_v", "to_out.0"]

    learning_rate: float = Field(1e-5, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    lr_warmup_steps: int = Field(0, ge=0)
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    num_epochs: int = 1
    max_steps: int | None = Field(None, ge=1)

    beta: float = Field(0.2, description="weight of the reconstruction term ||c* - c||^2 in stage 2 (Eq. 6)")
    anchor_weight: float = Field(
        0.0, ge=0.0, description="weight of an extra flow-matching term on the anchor's latent frame alone (0: Eq. 1 "
        "as written); for when the generated anchor frame drifts from the condition image"
    )
    timestep_sampling: Literal["uniform", "shifted", "logit_normal"] = "shifted"
    shift: float = 3.0
    weighting: Literal["none", "gaussian"] = Field(
        "none", description="per-sample loss weight by noise level: 'gaussian' favours middle timesteps "
        "(DiffSynth-Studio's Wan trainer, used with shift 5); 'none' weighs all alike"
    )
    logit_mean: float = 0.0
    logit_std: float = 1.0
    predicted_mask_value: float = 0.0

    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    gradient_checkpointing: bool = False
    seed: int = Field(0, ge=0, le=2**64 - 1)  # torch.manual_seed's unsigned range
    checkpoint_every: int = Field(500, ge=1)  # a step count modulo 0 stopped the run at its first step
    keep_last: int = Field(3, ge=1)
    log_every: int = Field(10, ge=1)
    report_to: Literal["none", "tensorboard"] = "none"
    num_workers: int = 0

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        """Old spellings (settings_names.RENAMED: lr, grad_clip, keep_checkpoints, ...) read as this config's names."""
        return renamed_settings(data, "training config") if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        if self.stage == 2 and self.init_from is None:
            raise ValueError("stage 2 fine-tunes a stage-1 result: set init_from to a stage-1 export folder")
        if self.stage == 2 and self.conditioning == "no_enhanced_latents":
            raise ValueError("conditioning no_enhanced_latents has no AlignFormer, so there is no stage 2 to run")
        if self.transformer_config is not None and self.stage != 0:
            raise ValueError("transformer_config builds a fresh DiT, which only stage 0 trains from scratch")
        if self.toy_data is not None and self.model != "tiny":
            raise ValueError("toy_data builds a cache with the tiny components; use it with model: tiny")
        if self.batch_size < 1 or self.gradient_accumulation_steps < 1 or self.num_epochs < 1:
            raise ValueError("batch_size, gradient_accumulation_steps and num_epochs must be at least 1")
        return self


def _set(tree: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for depth, key in enumerate(parents):
        tree = tree.setdefault(key, {})
        if not isinstance(tree, dict):
            raise ValueError(f"override {dotted}=...: {'.'.join(parents[:depth + 1])} is a value, not a group of "
                             "settings")
    tree[leaf] = value


def _yaml(text: str, where: str) -> Any:
    """`text` parsed as YAML, or ValueError with one line: `where`, line and column, and what is wrong there
    (PyYAML's own message spans several lines and pointed at "<unicode string>", not at the file)."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = " ".join(part for part in (err.context, err.problem) if part)
        raise ValueError(f"{where}{at}: not valid YAML ({problem})") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: not valid YAML ({' '.join(str(err).split())})") from None


def load_config(path: str | Path, overrides: list[str] = ()) -> TrainConfig:
    """Read a YAML config and apply `key=value` overrides (dotted keys reach nested settings)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    data = _yaml(text, str(path)) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold settings as `key: value` lines, not a {type(data).__name__}")
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        _set(data, key.strip(), _yaml(value, f"override {item!r}"))
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in err.errors())
        raise ValueError(f"{path}: {problems}") from err
