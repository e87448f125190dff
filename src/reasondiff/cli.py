"""The `reasondiff` command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from . import __version__

app = typer.Typer(
    name="reasondiff",
    help="Unpaired text-image-to-video generation (ReasonDiff) on diffusers' Wan2.1.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

TINY_NOTICE = (
    "NOTICE: --model tiny runs Wan2.1-I2V's real classes with tiny RANDOM weights. The video is noise, "
    "and no reasoning is applied yet: this command currently runs plain Wan I2V (image as first frame). "
    "ReasonDiffPipeline and the trained offline mini model are not built yet."
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reasondiff {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the warnings of transformers and diffusers."),
) -> None:
    """Unpaired text-image-to-video generation (ReasonDiff) on diffusers' Wan2.1."""
    if not verbose:
        # Library chatter (e.g. transformers' torchvision fallback note) would bury our own messages.
        import diffusers
        import transformers

        transformers.utils.logging.set_verbosity_error()
        diffusers.utils.logging.set_verbosity_error()


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def _load_wan_pipeline(model: str, device: str, dtype: str):
    import torch
    from diffusers import WanImageToVideoPipeline

    from .models import tiny

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    torch_dtype = getattr(torch, dtype)
    if model == "tiny":
        pipe = WanImageToVideoPipeline(**tiny.wan_components(seed=0))  # float32: a test model, any dtype is moot
    else:
        # A hub id (e.g. Wan-AI/Wan2.1-I2V-14B-480P-Diffusers) or a local folder in the diffusers layout;
        # from_pretrained keeps the modules Wan marks as float32-only in float32.
        pipe = WanImageToVideoPipeline.from_pretrained(model, torch_dtype=torch_dtype)
    return pipe.to(device), device


@app.command()
def generate(
    image: Path = typer.Option(None, "--image", "-i", help="Condition image. Default: the bundled broken-vase example."),
    prompt: str = typer.Option(None, "--prompt", "-p", help="Text prompt. Default: the bundled example's prompt."),
    output: Path = typer.Option(Path("outputs/example.mp4"), "--output", "-o", help="Video to write (.mp4 or .gif)."),
    model: str = typer.Option(
        "tiny", help="'tiny' (random weights, offline), a hub id, or a local diffusers folder of Wan2.1-I2V."
    ),
    num_frames: int = typer.Option(17, help="Frames to generate; must be 4k+1 (17, 33, 81)."),
    height: int = typer.Option(64, help="Height in pixels, a multiple of 16."),
    width: int = typer.Option(64, help="Width in pixels, a multiple of 16."),
    steps: int = typer.Option(4, help="Denoising steps (the paper uses 50 with real weights)."),
    guidance_scale: float = typer.Option(5.0, help="Classifier-free guidance scale (the paper uses 5.0)."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same video."),
    fps: int = typer.Option(8, help="Frames per second of the written video."),
    device: str = typer.Option("auto", help="'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1', ..."),
    dtype: str = typer.Option("auto", help="'auto' (bfloat16 on CUDA, float32 on CPU), 'float32', 'bfloat16'."),
) -> None:
    """Generate a video from a prompt and a condition image.

    Example: reasondiff generate --image vase.png --prompt "A cat plays in the room" -o cat.mp4
    """
    import torch

    from .frames import check_num_frames
    from .io import bundled_example, check_video_path, load_image, save_video

    example = bundled_example()
    try:
        check_num_frames(num_frames)
        if height % 16 or width % 16 or height <= 0 or width <= 0:
            raise ValueError(f"height and width must be positive multiples of 16, got {height}x{width}")
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        check_video_path(output)
        image_path = image or example.image_path
        condition = load_image(image_path)
    except ValueError as err:
        _fail(str(err))
    prompt = prompt if prompt is not None else example.prompt

    if model == "tiny":
        typer.secho(TINY_NOTICE, fg=typer.colors.YELLOW, err=True)
    pipe, device = _load_wan_pipeline(model, device, dtype)
    start = time.perf_counter()
    result = pipe(
        image=condition.resize((width, height)),
        prompt=prompt,
        height=height,
        width=width,
        num_frames=num_frames,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        generator=torch.Generator(device="cpu").manual_seed(seed),
        output_type="np",
    )
    seconds = time.perf_counter() - start
    frames = result.frames[0]
    save_video(frames, output, fps=fps)
    record = {
        "model": model,
        "mode": "wan-baseline",
        "prompt": prompt,
        "image": str(image_path),
        "num_frames": num_frames,
        "height": height,
        "width": width,
        "steps": steps,
        "guidance_scale": guidance_scale,
        "seed": seed,
        "seconds": round(seconds, 3),
        "reasondiff_version": __version__,
    }
    output.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    typer.echo(f"wrote {output} ({frames.shape[0]} frames, {width}x{height}) in {seconds:.1f} s on {device}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
