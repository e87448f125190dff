"""`reasondiff narrate`: write a frame-wise script for an unpaired image and prompt, and show it as a timeline.

`narrate` is a plain function with typer options; the main CLI registers it with `app.command()(narrate)`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import typer

from .schema import Narration

TIMEOUT_HELP = "Seconds to wait for each narrator request (an MLLM server) before retrying. Default: 120."


def open_narrator(spec: str, timeout: float | None = None, **options):
    """The VisionNarrator for `spec`, or exit 2 naming the spec (an unknown backend, a missing key, a bad timeout):
    the one way `generate`, `demo` and `eval run` turn --narrator and --timeout into a narrator."""
    from ..console import fail
    from .errors import NarratorError
    from .narrator import VisionNarrator

    if timeout is not None and timeout <= 0:
        fail(f"--timeout must be positive, got {timeout:g}")
    try:
        return VisionNarrator(spec, timeout=timeout, **options)
    except (NarratorError, ValueError, TypeError, ImportError) as err:
        fail(f"narrator {spec!r}: {err}")


def timeline(narration: Narration, width: int = 100) -> str:
    """The script as the paper's Fig. 6 shows it: one line per run of frames, the image's frame marked."""
    runs = narration.segments()
    label_width = max(len(f"Frame@{s.start}-{s.end}") for s in runs)
    lines = [f"{narration.num_frames} frames; the image is frame {narration.position}"]
    for run in runs:
        label = f"Frame@{run.start}-{run.end}" if run.end > run.start else f"Frame@{run.start}"
        mark = f"  <- image (frame {narration.position})" if run.start <= narration.position <= run.end else ""
        body = textwrap.wrap(run.description + mark, width=max(20, width - label_width - 2)) or [""]
        lines.append(f"{label:<{label_width}}  {body[0]}")
        lines += [" " * (label_width + 2) + more for more in body[1:]]
    return "\n".join(lines)


# Over 60 lines only by its 9 typer options (one per line: the interface); its body is 31 lines.
def narrate(
    image: Path = typer.Option(..., "--image", "-i", help="The condition image."),
    prompt: str = typer.Option(..., "--prompt", "-p", help="The text prompt (it may describe another moment)."),
    frames: int = typer.Option(None, "--frames", "--num-frames",
                               help="Frames to script, 4k+1 (17, 33, 81). Default: 17 for synthworld: (the mini "
                               "model's length), 81 otherwise (Wan2.1's)."),
    narrator: str = typer.Option(
        None, "--narrator",
        help="Backend spec: openai:gpt-4o | openai:MODEL@http://HOST:PORT/v1 | transformers:PATH_OR_HUB_ID | "
        "synthworld: (the mini model's world). Default: $REASONDIFF_NARRATOR, else openai:gpt-4o "
        "(needs OPENAI_API_KEY).",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="JSON file to write. Default: IMAGE_NAME.narration.json here."),
    max_attempts: int = typer.Option(3, help="Answers to ask for before giving up on a malformed script."),
    timeout: float = typer.Option(None, "--timeout", help=TIMEOUT_HELP),
    cache_dir: Path = typer.Option(None, help="Answer cache. Default: $REASONDIFF_CACHE/narrator or ~/.cache/reasondiff/narrator."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Always ask the model, even for a cached request."),
) -> None:
    """Ask an MLLM where the image belongs in the video and what every frame shows (the paper's VisionNarrator).

    Examples:

      reasondiff narrate -i frame.png -p "a dog plays in the garden" --narrator synthworld: --frames 17   # offline, SynthWorld images

      reasondiff narrate -i vase.png -p "A cat plays in the room"              # GPT-4o, OPENAI_API_KEY set

      reasondiff narrate -i vase.png -p "A cat plays" --narrator openai:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1 --timeout 300

      reasondiff generate -i vase.png -p "A cat plays in the room" -n vase.narration.json
    """
    from ..console import fail
    from ..frames import check_num_frames
    from ..media import check_writable, load_image
    from .errors import NarrationError, NarratorError
    from .narrator import VisionNarrator
    from .registry import default_num_frames, default_spec

    out = out if out is not None else Path(f"{image.stem}.narration.json")
    try:
        spec = narrator or default_spec()
        if frames is None:
            frames = default_num_frames(spec)
        check_num_frames(frames)
        if not prompt.strip():
            raise ValueError("the prompt is empty")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"--timeout must be positive, got {timeout:g}")
        check_writable(out)
        picture = load_image(image)
        vision = VisionNarrator(spec, cache_dir=cache_dir, use_cache=not no_cache, max_attempts=max_attempts,
                                timeout=timeout)
        script = vision.narrate(picture, prompt, frames)
    except NarrationError as err:
        fail(f"{err}\n(the model's answers could not be read as a script; try another model or --max-attempts)")
    except (NarratorError, ValueError, TypeError, ImportError) as err:
        fail(str(err))
    typer.echo(timeline(script))
    for warning in script.metadata.get("warnings", []):
        typer.secho(f"repaired: {warning}", fg=typer.colors.YELLOW, err=True)
    _write_script(out, script)
    typer.echo(f"wrote {out}")


def _write_script(out: Path, script: Narration) -> None:
    """Checked before the narrator ran; a full disk or a file-size limit can still stop the write: then one line,
    exit 1, and the previous script stays whole (`media.write_together`)."""
    from ..console import EXIT_FAILED, fail
    from ..media import write_together

    try:
        write_together({out: lambda path: path.write_text(script.to_json(indent=2) + "\n")})
    except OSError as err:
        fail(str(err), EXIT_FAILED)
