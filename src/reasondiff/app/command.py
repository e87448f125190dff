"""`reasondiff demo`: load a model like `generate` does and serve the studio on this machine.

`demo` is a plain function with typer options; the main CLI registers it with `app.command()(demo)`.
Gradio is an optional extra, imported only here, so `reasondiff --help` stays fast without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..console import fail as _fail
from ..narrator.cli import TIMEOUT_HELP, open_narrator

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def demo(
    model: str = typer.Option(
        "mini", help="'mini' (ReasonDiff-mini, shipped, trained on SynthWorld), 'tiny' (random weights: an install "
        "check), a hub id, or a local diffusers folder (Wan2.1-I2V or ReasonDiff).",
    ),
    narrator: str = typer.Option(
        None, "--narrator",
        help="MLLM that writes the script: openai:gpt-4o | openai:MODEL@http://HOST:PORT/v1 | transformers:PATH. "
        "Default: synthworld: for --model mini; otherwise none, and the page uses the bundled example's script "
        "or one you type.",
    ),
    timeout: float = typer.Option(None, "--timeout", help=TIMEOUT_HELP),
    alignformer: Path = typer.Option(None, help="AlignFormer folder to use with a plain Wan2.1-I2V --model."),
    lora: Path = typer.Option(None, help="Stage-1 LoRA weights for the DiT."),
    host: str = typer.Option("127.0.0.1", help="Address to serve on. Anything but localhost exposes the page to your network."),
    port: int = typer.Option(7860, help="Port to serve on (0: any free port)."),
    frames: int = typer.Option(None, help="Default frame count in the page (4k+1). Default: 17 for mini/tiny, 81 otherwise."),
    steps: int = typer.Option(None, help="Default denoising steps. Default: 10 for mini, 4 for tiny, 50 otherwise."),
    height: int = typer.Option(None, help="Default height (multiple of 16). Default: 64 for mini/tiny, 480 otherwise."),
    width: int = typer.Option(None, help="Default width (multiple of 16). Default: 64 for mini/tiny, 832 otherwise."),
    max_upload_mb: float = typer.Option(10.0, help="Largest image upload accepted, in MB."),
    output_dir: Path = typer.Option(None, help="Where generated videos and scripts go (the page serves files from it). Default: a new temporary folder."),
    device: str = typer.Option("auto", help="'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1', ..."),
    dtype: str = typer.Option("auto", help="'auto' (bfloat16 on CUDA, float32 on CPU), 'float32', 'bfloat16'."),
) -> None:
    """Open the ReasonDiff studio in your browser: narrate, edit the frame-by-frame script, generate, download.

    Needs the demo extra: pip install 'reasondiff\\[demo]'.

    Examples:

      reasondiff demo                                    # shipped mini model, http://127.0.0.1:7860

      reasondiff demo --narrator openai:gpt-4o --model Wan-AI/Wan2.1-I2V-14B-480P-Diffusers --alignformer ckpt/alignformer

      reasondiff demo --port 8080 --max-upload-mb 5
    """
    from ..frames import check_num_frames
    from ..pipelines.limits import limits_for
    from ..pipelines.loading import load_pipeline, model_defaults

    tiny = model == "tiny"
    settings = model_defaults(model, frames=frames, height=height, width=width, steps=steps, narrator=narrator)
    frames, height, width, steps = settings["frames"], settings["height"], settings["width"], settings["steps"]
    narrator = settings["narrator"]
    try:
        check_num_frames(frames)
        if height % 16 or width % 16 or height <= 0 or width <= 0:
            raise ValueError(f"height and width must be positive multiples of 16, got {height}x{width}")
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        limits = limits_for(model)
        if limits is not None:
            limits.check(frames, height, width, f"model {model!r}")
        if max_upload_mb <= 0:
            raise ValueError(f"--max-upload-mb must be positive, got {max_upload_mb}")
        if not 0 <= port <= 65535:
            raise ValueError(f"--port must be between 0 and 65535, got {port}")
    except (ValueError, TypeError) as err:
        _fail(str(err))
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        from .studio import build_app, launch
    except ImportError as err:
        _fail(f"the studio needs Gradio ({err}): pip install 'reasondiff[demo]'", code=1)

    from ..console import TINY_NOTICE

    writer = open_narrator(narrator, timeout) if narrator is not None else None
    if tiny:
        typer.secho(TINY_NOTICE, fg=typer.colors.YELLOW, err=True)
    try:
        pipe, device = load_pipeline(model, alignformer, lora, device, dtype)
    except (OSError, ValueError) as err:
        _fail(f"could not load model {model!r}: {err}")
    pipe.set_progress_bar_config(disable=True)  # the page shows progress
    if host not in LOCAL_HOSTS:
        typer.secho(f"warning: serving on {host} makes the studio reachable from your network", err=True,
                    fg=typer.colors.YELLOW)
    blocks = build_app(
        pipe, writer, height=height, width=width, frames=frames, max_frames=max(81, frames), steps=steps,
        max_upload_mb=max_upload_mb, output_dir=output_dir, model_name=model,
        notice=TINY_NOTICE if tiny else None,
    )
    typer.echo(f"ReasonDiff studio: model {model} on {device}; narrator {narrator or 'none (typed or bundled scripts)'}")
    launch(blocks, host, port or None, max_upload_mb=max_upload_mb)
