"""`reasondiff demo`: load a model like `generate` does and serve the studio on this machine.

`demo` is a plain function with typer options; the main CLI registers it with `app.command()(demo)`.
Gradio is an optional extra, imported only here, so `reasondiff --help` stays fast without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..console import fail as _fail
from ..device import DEVICE_HELP
from ..narrator.cli import TIMEOUT_HELP, open_narrator
from ..pipelines.settings import MODEL_HELP, SIZE_HELP
from ..pipelines.registry import default_model, model_spec

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def demo(
    model: str = typer.Option(default_model(), help=MODEL_HELP),
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
    frames: int = typer.Option(None, help="The page's starting value. " + SIZE_HELP["frames"]),
    steps: int = typer.Option(None, help="The page's starting value. " + SIZE_HELP["steps"]),
    height: int = typer.Option(None, help="The page's starting value. " + SIZE_HELP["height"]),
    width: int = typer.Option(None, help="The page's starting value. " + SIZE_HELP["width"]),
    max_upload_mb: float = typer.Option(10.0, help="Largest image upload accepted, in MB."),
    output_dir: Path = typer.Option(None, help="Where generated videos and scripts go (the page serves files from it). Default: a new temporary folder."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    dtype: str = typer.Option("auto", help="'auto' (bfloat16 on CUDA, float32 on CPU), 'float32', 'bfloat16'."),
) -> None:
    """Open the ReasonDiff studio in your browser: narrate, edit the frame-by-frame script, generate, download.

    Needs the demo extra: pip install 'reasondiff\\[demo]'.

    Examples:

      reasondiff demo                                    # shipped mini model, http://127.0.0.1:7860

      reasondiff demo --narrator openai:gpt-4o --model Wan-AI/Wan2.1-I2V-14B-480P-Diffusers --alignformer ckpt/alignformer

      reasondiff demo --port 8080 --max-upload-mb 5
    """
    from ..pipelines.cli import load_or_fail
    from ..pipelines.settings import prepare_generation

    try:
        job = prepare_generation(model, narrator=narrator, model_narrator=True, frames=frames, height=height,
                                 width=width, steps=steps, device=device, dtype=dtype)
        _check_server(host, port, max_upload_mb)
    except ValueError as err:
        _fail(str(err))
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        from .studio import build_app, launch
    except ImportError as err:
        _fail(f"the studio needs Gradio ({err}): pip install 'reasondiff[demo]'", code=1)
    writer = open_narrator(job.narrator, timeout) if job.narrator is not None else None
    pipe, device = load_or_fail(job, alignformer, lora, device, dtype)
    pipe.set_progress_bar_config(disable=True)  # the page shows progress
    blocks = build_app(
        pipe, writer, height=job.height, width=job.width, frames=job.frames, max_frames=max(81, job.frames),
        steps=job.steps, guidance_scale=job.guidance, max_upload_mb=max_upload_mb, output_dir=output_dir,
        model_name=model,
        notice=model_spec(model).notice,
    )
    typer.echo(f"ReasonDiff studio: model {model} on {device}; narrator {job.narrator or 'none (typed or bundled scripts)'}")
    launch(blocks, host, port or None, max_upload_mb=max_upload_mb)


def _check_server(host: str, port: int, max_upload_mb: float) -> None:
    """ValueError for a port or upload limit that cannot be served; a warning when the page leaves this machine."""
    if max_upload_mb <= 0:
        raise ValueError(f"--max-upload-mb must be positive, got {max_upload_mb}")
    if not 0 <= port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535, got {port}")
    if host not in LOCAL_HOSTS:
        typer.secho(f"warning: serving on {host} makes the studio reachable from your network", err=True,
                    fg=typer.colors.YELLOW)
