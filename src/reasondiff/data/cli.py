"""`reasondiff data ...`: sample clips, caption their frames, build the training cache and the evaluation sets.

Register in the main CLI with `app.add_typer(data_app, name="data")`; also runs alone as
`python -m reasondiff.data.cli` (what `accelerate launch -m reasondiff.data.cli caption ...` uses).
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from ..console import fail as _fail
from ..device import DEVICE_HELP

app = typer.Typer(
    name="data",
    help="Training and evaluation data: sample clips, caption frames, cache latents, build benchmark sets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _logging() -> None:
    """reasondiff's warnings (a skipped video, ...) on stderr: the stderr of this call, not the one the handler
    was made for (a second command in one process, as the tests run them, wrote to a closed stream)."""
    import sys

    logger = logging.getLogger("reasondiff")
    ours = [handler for handler in logger.handlers if getattr(handler, "reasondiff_cli", False)]
    if ours:
        ours[0].stream = sys.stderr  # not setStream: it flushes the old stream, which may be closed
    elif not logger.handlers:
        handler = logging.StreamHandler()
        handler.reasondiff_cli = True
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


@app.command()
def sample(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="A folder of videos, or a CSV (videoid, contentUrl|path, name)."),
    output: Path = typer.Argument(..., metavar="OUTPUT", help="Folder for the sharded clips and manifest (resumed if it exists)."),
    frames: int = typer.Option(33, "--frames", "-f", help="Frames per clip (33 for training as in the paper; 16 for its evaluation set; training needs 4k+1)."),
    interval: float = typer.Option(0.2, "--interval", help="Seconds between sampled frames (the paper: 0.2)."),
    size: str = typer.Option("512", "--size", help="PX (square) or WIDTHxHEIGHT: resize to cover, then center-crop."),
    clips_per_video: int = typer.Option(1, "--clips-per-video", help="Up to this many non-overlapping clips per video, spread over it."),
    shard_size: int = typer.Option(16, "--shard-size", help="Clips per safetensors shard (held in memory until written)."),
    store: str = typer.Option("raw", "--store", help="raw (exact uint8 frames, 26 MB per 33-frame 512px clip) | jpeg (about 10x smaller)."),
    quality: int = typer.Option(95, "--quality", help="JPEG quality for --store jpeg (4:4:4 chroma)."),
    workers: int = typer.Option(0, "--workers", help="Decoding processes (0: decode in this process)."),
    limit: int = typer.Option(None, "--limit", help="Only the first N videos of the input."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Sample fixed-interval clips from videos into a sharded dataset with a manifest.

    Frames are taken by presentation time (any fps, variable frame rate included) and turned upright by the
    rotation metadata. Videos too short for one clip and unreadable or corrupt files are skipped and listed in
    OUTPUT/skipped.jsonl. Rerunning after an interruption continues where it stopped.

    Example: reasondiff data sample videos/ clips/ --frames 33 --interval 0.2 --size 512
    """
    from ..media import check_outputs
    from .sampling import sample_videos
    from .video import parse_size

    _logging()
    try:
        check_outputs(*(output / name for name in ("meta.json", "manifest.jsonl", "skipped.jsonl")))  # before any video
        report = sample_videos(input_path, output, num_frames=frames, interval=interval, size=parse_size(size),
                               clips_per_video=clips_per_video, clips_per_shard=shard_size, store=store,
                               quality=quality, workers=workers, limit=limit, progress=progress)
    except ValueError as err:
        _fail(str(err))
    typer.echo(f"sampled {report.summary(output)}")


@app.command()
def caption(
    dataset: Path = typer.Argument(..., help="A folder written by `reasondiff data sample`."),
    narrator: str = typer.Option(..., "--narrator", "-n", help="Captioner: a reasondiff.narrator backend spec (openai:gpt-4o, transformers:/path) or py:module:Name."),
    output: Path = typer.Option(None, "--output", "-o", help="Folder for captions.jsonl (default: the dataset folder)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Frames per captioner call."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Caption every sampled frame (one caption per frame), resumably.

    Runs in one process, or in many with `accelerate launch -m reasondiff.data.cli caption ...`: each process
    takes every n-th clip and the main process merges the results into captions.jsonl.
    """
    from .captioning import resolve_captioner, run_captioning

    _logging()
    try:
        captioner = resolve_captioner(narrator)
    except ValueError as err:
        _fail(str(err))
    try:
        result = run_captioning(dataset, captioner, output=output, batch_size=batch_size, progress=progress)
    except ValueError as err:
        _fail(str(err))
    except (RuntimeError, ConnectionError) as err:  # e.g. reasondiff.narrator.NarratorError: the backend failed
        typer.secho(f"error: captioning failed: {err} (finished clips are kept; run again to resume)", err=True,
                    fg=typer.colors.RED)
        raise typer.Exit(1) from None
    if result is not None:
        rows, missing = result
        where = (output or dataset) / "captions.jsonl"
        typer.echo(f"captioned {rows} clips into {where}")
        if missing:
            _fail(f"{len(missing)} clips have no captions yet (e.g. {missing[0]}); run the command again")


def _load_encoders(model: str, device: str, dtype: str) -> dict:
    import torch

    from ..device import resolve_device

    device, compute = resolve_device(device, dtype)
    if model == "tiny":
        from ..models import tiny_wan

        components = tiny_wan.wan_components(seed=0)
    else:
        from diffusers import WanImageToVideoPipeline

        # The DiT is not needed; Wan's VAE stays in float32 as diffusers recommends.
        pipe = WanImageToVideoPipeline.from_pretrained(
            model, transformer=None, transformer_2=None, dtype={"vae": torch.float32, "default": compute}
        )
        components = pipe.components
        if components.get("image_encoder") is None:
            raise ValueError(f"{model} has no image_encoder: the cache needs Wan2.1-I2V's CLIP image encoder")
    names = ("vae", "text_encoder", "tokenizer", "image_encoder", "image_processor")
    out = {name: components[name] for name in names}
    for name in ("vae", "text_encoder", "image_encoder"):
        out[name] = out[name].to(device).eval()
    return out


# Over 60 lines only by its 13 typer options (one per line: the interface); its body is 43 lines.
@app.command()
def cache(
    dataset: Path = typer.Argument(..., help="A folder written by `reasondiff data sample` (and captioned)."),
    output: Path = typer.Argument(..., help="Folder for the training cache (resumed if it exists)."),
    model: str = typer.Option(..., "--model", help="A Wan2.1-I2V diffusers folder or hub id, or 'tiny' (random weights, tests)."),
    captions: Path = typer.Option(None, "--captions", help="captions.jsonl (default: the one in DATASET)."),
    anchors: int = typer.Option(4, "--anchors", help="Condition frames precomputed per clip (one is drawn per sample)."),
    condition_videos: bool = typer.Option(
        False, "--condition-videos", help="Also keep each anchor's whole encoded condition video (frame 1 always "
        "included): needed by stage-0 training and the 'no_enhanced_latents' ablation.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for the anchor positions."),
    shard_size: int = typer.Option(64, "--shard-size", help="Clips per safetensors shard."),
    max_sequence_length: int = typer.Option(512, "--max-sequence-length", help="UMT5 context length (Wan: 512)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    dtype: str = typer.Option("auto", help="Compute dtype of the text and image encoders: auto (bfloat16 on CUDA), float32, bfloat16."),
    store_dtype: str = typer.Option("float32", "--store-dtype", help="dtype of the stored latents/embeddings: float32, bfloat16, float16."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Precompute VAE latents of every clip and UMT5 embeddings of every distinct caption for training.

    Clips must have 4k+1 frames (17, 33, 81). Example: reasondiff data cache clips/ cache/ --model Wan-AI/Wan2.1-I2V-14B-480P-Diffusers
    """
    import torch

    from ..device import check_device
    from ..frames import check_num_frames
    from .cache import CacheInput, write_cache
    from .captioning import read_captions
    from .sampling import SampledClips

    _logging()
    try:
        clips = SampledClips(dataset)
        texts = read_captions(captions if captions is not None else dataset)
        if not clips.rows:
            raise ValueError(f"{dataset} holds no clips")
        num_frames = clips.meta["num_frames"]
        try:
            check_num_frames(num_frames)
        except ValueError as err:
            raise ValueError(f"the clips in {dataset} have {num_frames} frames, the training cache needs 4k+1: "
                             f"{err}; sample again with e.g. --frames 33") from None
        missing = [row["clip_id"] for row in clips.rows if row["clip_id"] not in texts]
        if missing:
            raise ValueError(f"{len(missing)} of {len(clips.rows)} clips have no captions (e.g. {missing[0]}): "
                             "run `reasondiff data caption` first")
        if store_dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"--store-dtype must be float32, bfloat16 or float16, got {store_dtype!r}")
        check_device(device, dtype)  # a device this machine lacks, before the encoders load
    except ValueError as err:
        _fail(str(err))
    try:
        encoders = _load_encoders(model, device, dtype)
    except (OSError, ValueError) as err:
        _fail(f"could not load model {model!r}: {err}")

    inputs = (CacheInput(row["clip_id"], frames, texts[row["clip_id"]], row.get("source_caption"))
              for row, frames in clips)
    try:
        write_cache(output, inputs, **encoders, anchors_per_clip=anchors, seed=seed, condition_videos=condition_videos,
                    max_sequence_length=max_sequence_length, clips_per_shard=shard_size,
                    dtype=getattr(torch, store_dtype), progress=progress)
    except ValueError as err:
        _fail(str(err))
    typer.echo(f"cached {len(clips.rows)} clips into {output}")


@app.command("build-unpaired")
def build_unpaired_cmd(
    dataset: Path = typer.Argument(..., help="A sampled and captioned folder (the paper: 16-frame clips)."),
    output: Path = typer.Argument(..., help="Folder for benchmark.jsonl and images/."),
    captions: Path = typer.Option(None, "--captions", help="captions.jsonl (default: the one in DATASET)."),
    num: int = typer.Option(None, "--num", help="Use a seeded random subset of N clips (the paper: 500)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first/last choice and of the subset."),
) -> None:
    """The paper's unpaired set: the first or last frame as the image (half each, seeded), the caption of the
    opposite end as the prompt, and the ground truth (true position, every frame's caption) for scoring."""
    from ..media import check_outputs
    from .benchmarks import build_unpaired

    try:
        check_outputs(output / "benchmark.jsonl", output / "info.json")  # a file in OUTPUT's place, before any work
        path = build_unpaired(dataset, output, captions=captions, num=num, seed=seed)
    except ValueError as err:
        _fail(str(err))
    typer.echo(f"wrote {path}")


@app.command("build-paired")
def build_paired_cmd(
    dataset: Path = typer.Argument(..., help="A sampled folder (captioned, or sampled from a CSV with captions)."),
    output: Path = typer.Argument(..., help="Folder for benchmark.jsonl and images/."),
    captions: Path = typer.Option(None, "--captions", help="captions.jsonl (default: the one in DATASET, if any)."),
    prompt: str = typer.Option("source", "--prompt", help="source (the dataset's caption, CSV 'name') | first | middle | last (a generated frame caption)."),
    num: int = typer.Option(None, "--num", help="Use a seeded random subset of N clips."),
    seed: int = typer.Option(0, "--seed", help="Seed of the subset."),
) -> None:
    """MSR-VTT-style paired set: the first frame as the image and the clip's caption as the prompt."""
    from ..media import check_outputs
    from .benchmarks import build_paired

    try:
        check_outputs(output / "benchmark.jsonl", output / "info.json")  # a file in OUTPUT's place, before any work
        path = build_paired(dataset, output, captions=captions, prompt=prompt, num=num, seed=seed)
    except ValueError as err:
        _fail(str(err))
    typer.echo(f"wrote {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
