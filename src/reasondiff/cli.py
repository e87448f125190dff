"""The `reasondiff` command line."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from . import __version__

from .console import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from .console import fail as _fail
from .console import hide_flag_types, one_line_usage_errors
from .device import DEVICE_HELP
from .narrator.cli import TIMEOUT_HELP, open_narrator
from .pipelines.settings import MODEL_HELP, MODES_HELP, NARRATED_MODES, SIZE_HELP
from .pipelines.registry import default_model

hide_flag_types()
GLOBAL_FLAGS = ("--verbose", "-v", "--quiet", "-q")  # accepted before or after the command
app = typer.Typer(
    name="reasondiff",
    cls=one_line_usage_errors(GLOBAL_FLAGS),
    # no help= here: the root callback's docstring (with its examples) is the top-level help
    epilog="Exit codes: 0 success, 1 failed while running, 2 bad input or options, 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Set by the root callback; commands read it through _info() and _denoise_with_progress().
_STATE = {"quiet": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reasondiff {__version__}")
        raise typer.Exit()


def _info(message: str) -> None:
    """A result line: printed unless --quiet (errors and warnings always print, on stderr)."""
    if not _STATE["quiet"]:
        typer.echo(message)


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show the warnings of transformers and diffusers (before or after the command)."
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q",
        help="Print only errors and warnings: no progress bars, no result lines (before or after the command).",
    ),
) -> None:
    """Unpaired text-image-to-video generation (ReasonDiff) on diffusers' Wan2.1.

    Start here:

      reasondiff doctor        # what this installation can do: versions, device, narrators, weights

      reasondiff generate      # the bundled example on the shipped mini model

      reasondiff demo          # the studio: see and edit the narrator's script in your browser

    Every command explains its options with examples: reasondiff COMMAND --help.
    """
    if quiet and verbose:
        typer.secho("error: --quiet and --verbose contradict each other; pass one", err=True, fg=typer.colors.RED)
        raise typer.Exit(EXIT_USAGE)
    _STATE["quiet"] = quiet
    _library_output(verbose, quiet or not sys.stderr.isatty())


def _library_output(verbose: bool, no_bars: bool) -> None:
    """Hide transformers' and diffusers' warnings unless --verbose (chatter that would bury our own messages), and
    their loading bars with --quiet or when stderr is not a terminal: in a pipe or a log file each bar is a line
    of carriage returns and escape codes. Our own bars (rich) draw nothing live off a terminal."""
    import diffusers
    import huggingface_hub
    import transformers

    if not verbose:
        transformers.utils.logging.set_verbosity_error()
        diffusers.utils.logging.set_verbosity_error()
    if no_bars:
        transformers.utils.logging.disable_progress_bar()
        diffusers.utils.logging.disable_progress_bar()
        huggingface_hub.utils.disable_progress_bars()


def _denoise_with_progress(pipe, steps: int, label: str, **call):
    """Run the pipeline under a rich progress bar on stderr (steps done, elapsed, remaining); none with --quiet."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .pipelines.narrated import generate

    pipe.set_progress_bar_config(disable=True)  # diffusers' tqdm bar would print beside ours
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=_STATE["quiet"]) as bar:
        task = bar.add_task(label, total=steps)

        def on_step(pipeline, i, t, tensors):
            bar.update(task, completed=i + 1)
            return {}

        return generate(pipe, **call, num_inference_steps=steps, callback_on_step_end=on_step)


def _narration_for(narration_file: Path | None, image: Path | None, prompt: str | None, num_frames: int, mode: str,
                   narrator):
    """The user's narration file, the bundled example's, or None (the narrator writes it, or the mode needs none)."""
    from .example import bundled_example
    from .narrator.schema import Narration

    if narration_file is not None:
        return Narration.from_file(narration_file)
    if mode not in NARRATED_MODES or narrator is not None:
        return None
    if image is None and prompt is None:
        return bundled_example().narration.resample(num_frames)
    raise ValueError(
        f"mode {mode!r} needs a frame-wise script: pass --narration FILE.json "
        '({"position": j, "descriptions": [one per frame]}), or --narrator SPEC to have an MLLM write it, '
        "or use --mode wan"
    )


def _prepare(image: Path | None, prompt: str | None, narration: Path | None, writer, mode: str, frames: int):
    """The condition image, the script (None when the narrator writes it) and the image's path; the narrator's
    own refusals (an image or prompt it cannot read) come here too, before any model is loaded."""
    from .example import bundled_example
    from .media import load_image

    example = bundled_example()
    image_path = image or example.image_path
    condition = load_image(image_path)
    script = _narration_for(narration, image, prompt, frames, mode, writer)
    if script is not None and script.num_frames != frames:
        raise ValueError(
            f"the narration describes {script.num_frames} frames but --frames is {frames}: "
            f"give a narration with {frames} descriptions or pass --frames {script.num_frames}"
        )
    if writer is not None and script is None and mode in NARRATED_MODES:
        writer.check_request(condition, prompt if prompt is not None else example.prompt, frames)
    return condition, script, image_path


STRENGTH_HELP = ("How hard the image is held at its frame, 0..1 (default 1). Only for the keyframe backends "
                 "(a WanVACEPipeline, LTXConditionPipeline or LTX2ConditionPipeline --model folder).")


# Over 60 lines only by its 21 typer options (one per line: the interface); its body is 30 lines.
@app.command()
def generate(
    image: Path = typer.Option(None, "--image", "-i", help="Condition image. Default: the bundled broken-vase example."),
    prompt: str = typer.Option(None, "--prompt", "-p", help="Text prompt. Default: the bundled example's prompt."),
    out: Path = typer.Option(
        Path("outputs/example.mp4"), "--out", "--output", "-o",
        help="Video to write (.mp4 or .gif); OUT.narration.json is written beside it.",
    ),
    narration: Path = typer.Option(
        None, "--narration", "-n", help='Frame-wise script as JSON: {"position": j, "descriptions": [...]}.'
    ),
    narrator: str = typer.Option(
        None, "--narrator",
        help="Write the script with an MLLM when no --narration is given: openai:gpt-4o | "
        "openai:MODEL@http://HOST:PORT/v1 | transformers:PATH (see `reasondiff narrate --help`).",
    ),
    timeout: float = typer.Option(None, "--timeout", help=TIMEOUT_HELP),
    mode: str = typer.Option("reasondiff", help=MODES_HELP),
    model: str = typer.Option(default_model(), help=MODEL_HELP),
    alignformer: Path = typer.Option(None, help="AlignFormer folder to use with a plain Wan2.1-I2V --model."),
    lora: Path = typer.Option(None, help="Stage-1 LoRA weights for the DiT (a file or folder load_lora_weights reads)."),
    frames: int = typer.Option(None, "--frames", "--num-frames", help=SIZE_HELP["frames"]),
    height: int = typer.Option(None, help=SIZE_HELP["height"]),
    width: int = typer.Option(None, help=SIZE_HELP["width"]),
    steps: int = typer.Option(None, help=SIZE_HELP["steps"]),
    guidance: float = typer.Option(None, "--guidance", "--guidance-scale", help=SIZE_HELP["guidance"]),
    negative_prompt: str = typer.Option(None, help="Negative prompt for classifier-free guidance."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same video."),
    fps: int = typer.Option(8, help="Frames per second of the written video."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    dtype: str = typer.Option("auto", help="'auto' (bfloat16 on CUDA, float32 on CPU), 'float32', 'bfloat16'."),
    strength: float = typer.Option(None, help=STRENGTH_HELP),
) -> None:
    """Generate a video from a prompt and a condition image that need not show the same moment.

    Examples:

      reasondiff generate                       # the bundled example on the shipped mini model

      reasondiff generate -i vase.png -p "A cat plays in the room" -n script.json -o cat.mp4

      reasondiff generate -i vase.png -p "A cat plays in the room" --mode wan -o baseline.mp4
    """
    from .example import bundled_example
    from .media import check_outputs, check_video_path
    from .pipelines.cli import load_or_fail
    from .pipelines.settings import prepare_generation

    try:
        job = prepare_generation(model, (mode,), narrator=narrator, model_narrator=narration is None and mode != "wan",
                                 prompt=prompt, frames=frames, height=height, width=width, steps=steps,
                                 guidance=guidance, seed=seed, fps=fps, device=device, dtype=dtype)
        check_outputs(check_video_path(out), *_generation_files(out)[1:])  # all three, before any work
        keyframe = _keyframe_call(strength, mode, job.model)
    except ValueError as err:
        _fail(str(err))
    writer = None
    if job.narrator is not None and narration is None and mode != "wan":
        writer = open_narrator(job.narrator, timeout)
    try:
        condition, script, image_path = _prepare(image, prompt, narration, writer, mode, job.frames)
    except ValueError as err:
        _fail(str(err))
    prompt = prompt if prompt is not None else bundled_example().prompt
    pipe, device = load_or_fail(job, alignformer, lora, device, dtype)
    start = time.perf_counter()
    result = _denoise(pipe, job, mode, image=condition.resize((job.width, job.height)), prompt=prompt, narration=script,
                      narrator=writer, negative_prompt=negative_prompt, guidance_scale=job.guidance, seed=seed,
                      **keyframe)
    seconds = time.perf_counter() - start
    _write_generation(result, out, fps, {
        "mode": mode, "model": model, "prompt": prompt, "prompt_used": result.prompt, "image": str(image_path),
        "num_frames": job.frames, "height": job.height, "width": job.width, "steps": job.steps,
        "guidance_scale": job.guidance, "seed": seed, "seconds": round(seconds, 3), "reasondiff_version": __version__,
    }, f"{seconds:.1f} s on {device}")


def _keyframe_call(strength: float | None, mode: str, model: str) -> dict:
    """`{"strength": S}` for a keyframe backend's call ({} when not given), before anything loads; ValueError for a
    mode a keyframe backend does not render, or naming --strength for a value outside [0, 1] or a model whose
    pipeline has no strength (ReasonDiff's Wan I2V holds frame 1 fully)."""
    import math

    from .pipelines.modes import ZERO_MODES
    from .pipelines.registry import KEYFRAME_BACKENDS, model_spec

    backend = model_spec(model).backend
    if backend in KEYFRAME_BACKENDS and mode not in ZERO_MODES:
        raise ValueError(f"mode {mode!r} needs ReasonDiff's Wan2.1-I2V pipeline; the {backend} backend of {model!r} "
                         f"renders --mode {' or '.join(ZERO_MODES)} (training-free)")
    if strength is None:
        return {}
    if not (math.isfinite(strength) and 0.0 <= strength <= 1.0):
        raise ValueError(f"--strength must be a number in [0, 1], got {strength}")
    if backend not in KEYFRAME_BACKENDS:
        raise ValueError(f"--strength is for the keyframe backends ({', '.join(KEYFRAME_BACKENDS)}); model {model!r} "
                         f"renders on the {backend} backend, which has none")
    return {"strength": strength}


def _denoise(pipe, job, mode: str, *, seed: int, **call):
    """The video, with the narrator's and the pipeline's failures turned into one line and the right exit code."""
    import torch

    from .narrator import NarratorError, NarratorProtocolError

    try:
        return _denoise_with_progress(
            pipe, job.steps, f"denoising ({mode})", mode=mode, num_frames=job.frames, height=job.height,
            width=job.width, generator=torch.Generator(device="cpu").manual_seed(seed), output_type="np", **call,
        )
    except NarratorProtocolError as err:  # the spec points at a server that is not an OpenAI one: bad input
        _fail(f"narrator: {err}")
    except NarratorError as err:  # the narrator ran and failed (unreachable, or no usable script): not bad input
        _fail(f"narrator: {err}", EXIT_FAILED)
    except ValueError as err:
        _fail(str(err))


def _generation_files(out: Path) -> tuple[Path, Path, Path]:
    """What `generate -o OUT` writes: the video, its script beside it, its contact sheet beside it."""
    return out, out.with_suffix(".narration.json"), out.with_suffix(".png")


def _write_generation(result, out: Path, fps: int, generation: dict, took: str) -> None:
    """The video, its script (with the settings) and its contact sheet, written together (`media.write_together`),
    then the result lines and the script as a timeline."""
    from .media import save_contact_sheet, save_video, write_together
    from .narrator.schema import Narration

    video, frames = result.frames[0], generation["num_frames"]
    used = result.narration or Narration(position=1, descriptions=[result.prompt] * frames)
    record = used.model_copy(update={"metadata": {**used.metadata, "generation": generation}})
    _, narration_path, sheet = _generation_files(out)
    try:
        write_together({
            out: lambda path: save_video(video, path, fps=fps),
            narration_path: lambda path: path.write_text(record.to_json(indent=2) + "\n"),
            sheet: lambda path: save_contact_sheet(video, path, anchor=used.position),
        })
    except OSError as err:  # checked before the run; a disk can still fill up during it (the old set stays whole)
        _fail(str(err), EXIT_FAILED)
    _info(f"wrote {out} ({video.shape[0]} frames, {generation['width']}x{generation['height']}, "
          f"mode {generation['mode']}) in {took}")
    _info(f"wrote {narration_path} (image at frame {used.position} of {used.num_frames}) and {sheet} (key frames)")
    if result.narration is not None:
        _info("script:")
        for segment in used.segments():
            mark = "  <- the image" if segment.start <= used.position <= segment.end else ""
            _info(f"  frames {segment.start:>3}-{segment.end:<3} {segment.description}{mark}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def train(
    ctx: typer.Context,
    config: Path = typer.Option(..., "--config", "-c", help="YAML training config (see configs/)."),
    plan: bool = typer.Option(False, "--plan", help="Print per-GPU memory (DDP/FSDP/ZeRO) for the config; train nothing."),
    gpus: int = typer.Option(8, "--gpus", min=1, help="With --plan: the number of GPUs the global batch is split over."),
) -> None:
    """Train ReasonDiff: stage 1 (LoRA on the DiT + AlignFormer) or stage 2 (AlignFormer, Eq. 6).

    Extra KEY=VALUE arguments override the config (dotted keys for nested settings).

    Examples:

      reasondiff train --config configs/tiny_stage1.yaml

      reasondiff train --config configs/tiny_stage1.yaml max_steps=20 output_dir=runs/try

      reasondiff train --config configs/wan14b_stage1.yaml --plan --gpus 8

      accelerate launch --config_file configs/accelerate/fsdp.yaml -m reasondiff train --config configs/wan14b_stage1.yaml
    """
    from .training import Trainer, load_config

    try:
        settings = load_config(config, ctx.args)
        if plan:
            from .training.plan import render

            typer.echo(render(settings, gpus))
            return
        trainer = Trainer(settings)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    export = trainer.train()
    if trainer.accelerator.is_main_process:
        holds = "transformer/" if settings.stage == 0 else "alignformer/ + LoRA"
        _info(f"wrote {export} ({holds}); rerunning the same command resumes or, when finished, re-exports")


def _register_subcommands() -> None:
    from .app import demo
    from .data.cli import app as data_app
    from .doctor import doctor
    from .evaluation.cli import app as eval_app
    from .narrator.cli import narrate
    from .plugins import COMMANDS, command_function
    from .thinkdiff.cli import app as thinkdiff_app

    app.command()(narrate)
    app.command()(demo)
    app.command()(doctor)
    groups = {"data": data_app, "eval": eval_app, "thinkdiff": thinkdiff_app}
    for group, name, target in COMMANDS:  # plugins' commands (SynthWorld's build-synthworld, thinkdiff bench)
        groups[group].command(name)(command_function(target))
    app.add_typer(data_app, name="data", help=_listing("Training and evaluation data", data_app))
    app.add_typer(eval_app, name="eval", help=_listing("The paper's evaluation (Table 1, Fig. 5a, the user study) and "
                                                       "SynthWorld-Bench", eval_app))
    app.add_typer(thinkdiff_app, name="thinkdiff", help=_listing("ThinkDiff: align a VLM to diffusion decoders",
                                                                 thinkdiff_app))


def _listing(summary: str, group: typer.Typer) -> str:
    """A group's line in `reasondiff --help`: what it is for and every command it holds, read from the group itself
    (the hand-written lists fell behind: `thinkdiff bench` and `convert`, `eval rescore` were missing)."""
    from typer.main import get_command_name

    names = [c.name or get_command_name(c.callback.__name__) for c in group.registered_commands]
    return f"{summary}: {', '.join(names)}."


_register_subcommands()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # a clean line instead of a traceback, and the shell's usual code
        typer.secho("interrupted", err=True, fg=typer.colors.YELLOW)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
