"""Building ReasonDiff-mini: the SynthWorld training cache, and the assembled pipeline.

    python -m reasondiff.mini.build cache outputs/mini/cache --vae outputs/mini/vae/vae --clips 4000
    reasondiff train --config configs/mini_stage0.yaml          # plain I2V DiT from scratch
    reasondiff train --config configs/mini_stage1.yaml          # LoRA + AlignFormer
    reasondiff train --config configs/mini_stage2.yaml          # AlignFormer + reconstruction
    python -m reasondiff.mini.build assemble OUT --vae ... --base outputs/mini/stage0/export --reasondiff outputs/mini/stage2/export

An assembled folder is a saved `ReasonDiffPipeline` whose DiT is the stage-0 base, with the stage-1 LoRA
beside it (`pytorch_lora_weights.safetensors`) rather than fused in: the loader takes it as ReasonDiff's
adapter, which the pipeline switches off in the baseline modes, so one folder serves ReasonDiff-mini and the
plain I2V model it was trained from (as Wan2.1 + ReasonDiff's LoRA does at full scale); load one with
`reasondiff.mini.pretrained.load_pipeline`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer
from diffusers import WanTransformer3DModel

from ..console import script_app

from ..data.cache import write_cache
from ..models.alignformer import AlignFormer
from ..pipelines.hub import LORA_FILE
from ..pipelines.pipeline_reasondiff import ReasonDiffPipeline
from .components import components
from .splits import training_clips


def build_cache(out: str | Path, vae, clips: int, num_frames: int = 17, size: int = 64, progress: bool = True) -> Path:
    parts = components(vae)
    return write_cache(out, training_clips(clips, num_frames, size), vae=parts["vae"],
                       text_encoder=parts["text_encoder"], tokenizer=parts["tokenizer"],
                       image_encoder=parts["image_encoder"], image_processor=parts["image_processor"],
                       anchors_per_clip=4, condition_videos=True, progress=progress)


def assemble(out: str | Path, vae, base: str | Path, reasondiff: str | Path | None = None) -> Path:
    """Write the mini pipeline to `out`: trained VAE, stage-0 DiT, and (if given) the AlignFormer and LoRA of
    an export folder (stage 2, or stage 1 for the "no aux loss" ablation)."""
    out = Path(out)
    transformer = WanTransformer3DModel.from_pretrained(Path(base) / "transformer")
    alignformer = None  # none for the plain model, nor for the "no enhanced latents" ablation, which trains none
    if reasondiff is not None and (Path(reasondiff) / "alignformer").is_dir():
        alignformer = AlignFormer.from_pretrained(Path(reasondiff) / "alignformer")
    ReasonDiffPipeline(**components(vae), transformer=transformer, alignformer=alignformer).save_pretrained(out)
    if reasondiff is not None and (Path(reasondiff) / LORA_FILE).is_file():
        shutil.copyfile(Path(reasondiff) / LORA_FILE, out / LORA_FILE)
    return out


app = script_app(__doc__)


@app.command("cache")
def cache_command(
    out: Path = typer.Argument(..., help="Folder for the training cache (resumed if it exists)."),
    vae: Path = typer.Option(..., "--vae", help="Trained mini VAE folder."),
    clips: int = typer.Option(4000, "--clips", min=1, help="SynthWorld training clips to cache."),
) -> None:
    """SynthWorld training clips -> training cache (with condition videos)."""
    print(build_cache(out, vae, clips))


@app.command("assemble")
def assemble_command(
    out: Path = typer.Argument(..., help="Folder for the ReasonDiffPipeline."),
    vae: Path = typer.Option(..., "--vae", help="Trained mini VAE folder."),
    base: Path = typer.Option(..., "--base", help="Stage-0 export folder (transformer/)."),
    reasondiff: Path | None = typer.Option(None, "--reasondiff", help="Stage-2 export folder (alignformer/ + LoRA)."),
) -> None:
    """Trained parts -> a ReasonDiffPipeline folder."""
    print(assemble(out, vae, base, reasondiff))


if __name__ == "__main__":
    app()
