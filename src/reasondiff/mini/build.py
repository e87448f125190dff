"""Building ReasonDiff-mini: the SynthWorld training cache, and the assembled pipeline.

    python -m reasondiff.mini.build cache outputs/mini/cache --vae outputs/mini/vae/checkpoint/vae --clips 4000
    reasondiff train --config configs/mini_stage0.yaml          # plain I2V DiT from scratch
    reasondiff train --config configs/mini_stage1.yaml          # LoRA + AlignFormer
    reasondiff train --config configs/mini_stage2.yaml          # AlignFormer + reconstruction
    python -m reasondiff.mini.build assemble OUT --vae ... --base outputs/mini/stage0/export --reasondiff outputs/mini/stage2/export
"""

from __future__ import annotations

import argparse
from pathlib import Path

from diffusers import WanTransformer3DModel

from ..data.cache import write_cache
from ..models.alignformer import AlignFormer
from ..pipelines.pipeline_reasondiff import ReasonDiffPipeline
from .components import components
from .splits import training_clips


def build_cache(out: str | Path, vae, clips: int, num_frames: int = 17, size: int = 64, progress: bool = True) -> Path:
    parts = components(vae)
    return write_cache(out, training_clips(clips, num_frames, size), vae=parts["vae"],
                       text_encoder=parts["text_encoder"], tokenizer=parts["tokenizer"],
                       image_encoder=parts["image_encoder"], image_processor=parts["image_processor"],
                       anchors_per_clip=4, condition_videos=True, progress=progress)


def assemble(vae, base: str | Path, reasondiff: str | Path | None = None) -> ReasonDiffPipeline:
    """The mini pipeline: trained VAE, stage-0 DiT, and (if given) the stage-2 AlignFormer + LoRA fused in."""
    transformer = WanTransformer3DModel.from_pretrained(Path(base) / "transformer")
    alignformer = None
    if reasondiff is not None:
        alignformer = AlignFormer.from_pretrained(Path(reasondiff) / "alignformer")
    pipe = ReasonDiffPipeline(**components(vae), transformer=transformer, alignformer=alignformer)
    if reasondiff is not None:
        pipe.load_lora_weights(str(reasondiff))
        pipe.fuse_lora()
        pipe.unload_lora_weights()
    return pipe


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    cache = commands.add_parser("cache", help="SynthWorld training clips -> training cache (with condition videos)")
    cache.add_argument("out")
    cache.add_argument("--vae", required=True, help="trained mini VAE folder")
    cache.add_argument("--clips", type=int, default=4000)
    build = commands.add_parser("assemble", help="trained parts -> a ReasonDiffPipeline folder")
    build.add_argument("out")
    build.add_argument("--vae", required=True)
    build.add_argument("--base", required=True, help="stage-0 export folder (transformer/)")
    build.add_argument("--reasondiff", help="stage-2 export folder (alignformer/ + LoRA)")
    args = parser.parse_args()
    if args.command == "cache":
        print(build_cache(args.out, args.vae, args.clips))
    else:
        assemble(args.vae, args.base, args.reasondiff).save_pretrained(args.out)
        print(args.out)


if __name__ == "__main__":
    main()
