"""The ReasonDiff studio: a Gradio app where the user sees the narrator's script, edits it, and generates.

What sets ReasonDiff apart is the reasoning (where the image sits in time, what each frame shows), so the page
puts it in the user's hands (paper §4.4, prompt-driven customisation): narrate, edit a segment or move the
anchor, generate, compare with plain Wan2.1 on the same seed, download the video and the script it used.

`build_app(pipeline, narrator=None, ...)` takes ready components, so tests inject tiny ones; `launch` starts the
server the one way the CLI and the tests both use (local, single worker, queued, capped uploads, no telemetry).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no phoning home

import gradio as gr
import numpy as np
import PIL.Image
import torch

from .. import __version__
from ..example import bundled_example
from ..media import load_image, save_video
from ..narrator.errors import NarrationError, NarratorError
from ..narrator.schema import Narration
from ..pipelines import narrated
from ..pipelines.settings import MODES, NARRATED_MODES, prepare_generation
from . import timeline
from .uploads import DEFAULT_MAX_MB, check_image_upload, read_image_upload

logger = logging.getLogger("reasondiff.app")

NO_NARRATOR_HELP = (
    "No narrator is configured, so the script below is a starting point: the prompt on every frame and the image "
    "at frame 1. Edit it into a story (split rows, change descriptions, move the anchor), or restart with a "
    "narrator: `reasondiff demo --narrator openai:gpt-4o` (needs OPENAI_API_KEY), "
    "`--narrator openai:MODEL@http://localhost:8000/v1` (any OpenAI-compatible server) or "
    "`--narrator transformers:PATH` (a local vision-language model)."
)
CSS = "#rd-status p { margin: 0; } .rd-error { color: #b00020; font-weight: 600; }"


class UserError(ValueError):
    """A problem the user can fix from the page; shown as a message, never as a traceback."""


def _error_message(err: Exception) -> str:
    if isinstance(err, NarrationError):
        return f"the narrator's answer could not be read as a script: {err.reason}"
    if isinstance(err, (ValueError, TypeError, NarratorError)):
        return str(err)
    logger.error("unexpected error in the studio:\n%s", traceback.format_exc())
    return f"unexpected {type(err).__name__}: {err} (the full traceback is in the server log)"


def _status_error(err: Exception) -> str:
    return f'<span class="rd-error">Error: {_error_message(err)}</span>'


def _same_picture(a: PIL.Image.Image, b: PIL.Image.Image) -> bool:
    """Whether two images show the same picture, whatever re-encoding the upload went through."""
    small = [np.asarray(x.convert("L").resize((16, 16)), dtype=np.float32) for x in (a, b)]
    return float(np.abs(small[0] - small[1]).mean()) < 4.0


class Studio:
    """The page's callbacks, holding the pipeline, the narrator and where videos are written."""

    def __init__(
        self,
        pipeline,
        narrator=None,
        *,
        height: int = 64,
        width: int = 64,
        fps: int = 8,
        guidance_scale: float = 5.0,
        max_upload_mb: float = DEFAULT_MAX_MB,
        output_dir: str | Path | None = None,
        model_name: str = "custom",
    ):
        self.pipeline, self.narrator = pipeline, narrator
        self.height, self.width, self.fps, self.guidance_scale = height, width, fps, guidance_scale
        self.max_upload_mb, self.model_name = max_upload_mb, model_name
        self.output_dir = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="reasondiff-studio-"))
        self.example = bundled_example()
        self._lock = threading.Lock()  # one generation at a time, whatever the queue settings

    # ------------------------------------------------------------------ uploads

    def on_upload(self, payload: Any):
        """Runs on the raw upload (preprocess off), so a bad file gets our message, not a PIL traceback.

        Returns the image (cleared when refused), the status and the refusal, kept in a hidden box: the
        image is gone after a refusal, and Narrate or Generate would otherwise only say that there is none."""
        path = payload.get("path") if isinstance(payload, dict) else getattr(payload, "path", payload)
        try:
            image, note = read_image_upload(path, self.max_upload_mb)
        except ValueError as err:
            return None, _status_error(err), str(err)
        size = f"{image.width}x{image.height}" + (f"; {note}" if note else "")
        return gr.update(), f"Image ready ({size}). Now narrate, or type a script.", ""

    def _image(self, path, refused: str | None = None) -> PIL.Image.Image:
        if (path is None or str(path) == "") and refused:
            raise UserError(f"no image: the last upload was not used, because {refused}")
        try:
            return check_image_upload(path, self.max_upload_mb)
        except ValueError as err:
            raise UserError(str(err)) from None

    @staticmethod
    def _prompt(prompt: str | None) -> str:
        if not prompt or not prompt.strip():
            raise UserError("the prompt is empty: describe what should happen in the video")
        return prompt.strip()

    # ------------------------------------------------------------------ the script

    def narrate(self, image_path, prompt, frames, refused=None, progress=gr.Progress()):
        """Rows, anchor, strip and status for the narrator's script (or the bundled/starter one without one);
        `refused`: why the last upload was refused (the hidden box), said again when there is no image."""
        try:
            image, prompt, frames = self._image(image_path, refused), self._prompt(prompt), int(frames)
            if self.narrator is not None:
                progress(0, desc="the narrator is reading the image and the prompt")
                script = self.narrator.narrate(image, prompt, frames)
                if script.num_frames != frames:
                    script = script.resample(frames)
                note = f"The narrator placed the image at frame {script.position}. Edit the script, then generate."
            elif _same_picture(image, load_image(self.example.image_path)) and \
                    prompt.lower() == self.example.prompt.lower():
                script = self.example.narration.resample(frames)
                note = "This is the bundled example's hand-written script (no narrator is configured). Edit it, then generate."
            else:
                script = timeline.starter(prompt, frames)
                note = NO_NARRATOR_HELP
        except Exception as err:  # noqa: BLE001 - every failure becomes a message in the page
            return gr.update(), gr.update(), gr.update(), _status_error(err)
        return (timeline.to_rows(script), gr.update(value=script.position, maximum=frames),
                timeline.strip_html(script), note)

    def preview(self, rows, position, frames):
        """Redraw the strip after an edit, or say what is wrong with the edited table."""
        try:
            script = timeline.from_rows(rows, position, int(frames))
        except Exception as err:  # noqa: BLE001
            return gr.update(), _status_error(err)
        return timeline.strip_html(script), f"Script OK: {len(script.segments())} segment(s), image at frame {script.position}."

    def refit(self, rows, position, frames):
        """A new frame count: tell the same script over the new number of frames."""
        frames = int(frames)
        try:
            old_frames = max(int(float(r[1])) for r in timeline.records(rows) if not timeline.is_blank(r))
            script = timeline.from_rows(rows, min(int(position), old_frames), old_frames).resample(frames)
        except Exception:  # noqa: BLE001 - no valid script yet: only the anchor's range changes
            return gr.update(), gr.update(maximum=frames, value=min(int(position or 1), frames)), gr.update()
        return (timeline.to_rows(script), gr.update(maximum=frames, value=script.position),
                timeline.strip_html(script))

    # ------------------------------------------------------------------ generation

    def _run(self, image, prompt, mode, script, frames, steps, seed, height, width, guidance, negative, progress, label):
        def on_step(pipe, i, t, tensors):
            progress((i + 1, steps), desc=f"{label}: denoising step {i + 1}/{steps}")
            return {}

        progress((0, steps), desc=f"{label}: encoding")
        return narrated.generate(
            self.pipeline, image.resize((width, height)), prompt, narration=script, narrator=self.narrator, mode=mode,
            negative_prompt=negative or None, num_frames=frames, height=height, width=width,
            num_inference_steps=steps, guidance_scale=guidance,
            generator=torch.Generator(device="cpu").manual_seed(seed), output_type="np", callback_on_step_end=on_step,
        )

    def generate(self, image_path, prompt, frames, steps, seed, mode, rows, position, baseline, height, width,
                 guidance, negative, refused=None, progress=gr.Progress()):
        """Video, baseline video, downloads, strip and status; errors leave the old outputs and explain."""
        keep = (gr.update(), gr.update(), gr.update(), gr.update())
        try:
            image, prompt = self._image(image_path, refused), self._prompt(prompt)
            seed = int(seed)
            try:  # the same checks as `reasondiff generate`, with the page's values
                job = prepare_generation(self.model_name, (mode,), narrator=self.narrator, frames=int(frames),
                                         height=int(height), width=int(width), steps=int(steps), seed=seed,
                                         guidance=None if guidance is None else float(guidance))
            except ValueError as err:
                raise UserError(str(err)) from None
            frames, steps, height, width = job.frames, job.steps, job.height, job.width
            script = None
            if mode in NARRATED_MODES:
                try:
                    script = timeline.from_rows(rows, position, frames)
                except ValueError as err:
                    raise UserError(f"{err} (press Narrate for a script, or type one in the table)") from None
            with self._lock:
                start = time.perf_counter()
                result = self._run(image, prompt, mode, script, frames, steps, seed, height, width, guidance,
                                   negative, progress, mode)
                base = None
                if baseline and mode != "wan":
                    base = self._run(image, prompt, "wan", None, frames, steps, seed, height, width, guidance,
                                     negative, progress, "plain Wan2.1")
                seconds = time.perf_counter() - start
            video, files = self._save(result, prompt, mode, frames, steps, seed, height, width, guidance, seconds)
            base_video = None
            if base is not None:
                base_video, base_files = self._save(base, prompt, "wan", frames, steps, seed, height, width,
                                                    guidance, seconds)
                files += base_files
        except Exception as err:  # noqa: BLE001
            return (*keep, _status_error(err))
        used = script or result.narration
        strip = timeline.strip_html(used) if used is not None else gr.update()
        status = (f"Generated {frames} frames ({width}x{height}, mode {mode}, seed {seed}) in {seconds:.1f} s"
                  + (" with the plain-Wan baseline beside it." if base_video else "."))
        return video, base_video, files, strip, status

    def _save(self, result, prompt, mode, frames, steps, seed, height, width, guidance, seconds):
        stem = self.output_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{mode}-seed{seed}-{os.urandom(3).hex()}"
        video_path = save_video(result.frames[0], stem.with_suffix(".mp4"), fps=self.fps)
        used = result.narration or Narration(position=1, descriptions=[result.prompt] * frames)
        record = used.model_copy(update={"metadata": {**used.metadata, "generation": {
            "mode": mode, "model": self.model_name, "prompt": prompt, "prompt_used": result.prompt,
            "num_frames": frames, "height": height, "width": width, "steps": steps, "guidance_scale": guidance,
            "seed": seed, "seconds": round(seconds, 3), "reasondiff_version": __version__, "source": "studio",
        }}})
        json_path = stem.with_suffix(".narration.json")
        json_path.write_text(record.to_json(indent=2) + "\n")
        return str(video_path), [str(video_path), str(json_path)]

    def load_example(self, frames):
        script = self.example.narration.resample(int(frames))
        return (str(self.example.image_path), self.example.prompt, timeline.to_rows(script),
                gr.update(value=script.position, maximum=int(frames)), timeline.strip_html(script),
                "Loaded the bundled example (broken vase + 'A cat plays in the room') and its hand-written script.")


def build_app(
    pipeline,
    narrator=None,
    *,
    height: int = 64,
    width: int = 64,
    frames: int = 17,
    max_frames: int = 81,
    steps: int = 4,
    fps: int = 8,
    guidance_scale: float = 5.0,
    max_upload_mb: float = DEFAULT_MAX_MB,
    output_dir: str | Path | None = None,
    model_name: str = "custom",
    notice: str | None = None,
) -> gr.Blocks:
    """The studio page around ready components.

    Args:
        pipeline: a `ReasonDiffPipeline` (already on its device).
        narrator: anything with `narrate(image, prompt, num_frames)` (and `rewrite` for mode "rewrite"), e.g. a
            `VisionNarrator`; None keeps the page usable with the bundled example's script or a typed one.
        height, width, frames, steps, guidance_scale: defaults shown in the page (`model_defaults`: small for the
            tiny model, 480x832 for Wan, no guidance for mini).
        max_upload_mb: uploads above this are refused (also pass it to `launch`, which enforces it server-side).
        output_dir: where videos and scripts are written (default: a new temporary folder).
        notice: a line shown at the top (e.g. that the tiny model's videos are noise).
    """
    studio = Studio(pipeline, narrator, height=height, width=width, fps=fps, guidance_scale=guidance_scale,
                    max_upload_mb=max_upload_mb, output_dir=output_dir, model_name=model_name)
    with gr.Blocks(title="ReasonDiff studio", analytics_enabled=False) as blocks:
        gr.Markdown(
            "# ReasonDiff studio\nAn image and a prompt that need not show the same moment: the narrator decides "
            "where the image belongs in the video and what every frame shows. **Edit that script, then generate.**"
        )
        if notice:
            gr.Markdown(f"> {notice}", elem_id="rd-notice")
        with gr.Row():
            with gr.Column(scale=1):
                page = _request_controls(height, width, frames, max_frames, steps, guidance_scale, max_upload_mb)
            with gr.Column(scale=1):
                page.update(_script_controls(frames))
        with gr.Row():
            page["video"] = gr.Video(label="ReasonDiff", elem_id="rd-video", autoplay=True, loop=True,
                                     interactive=False, height=360)
            page["base_video"] = gr.Video(label="Plain Wan2.1 (same seed)", elem_id="rd-baseline-video",
                                          autoplay=True, loop=True, interactive=False, height=360)
        page["files"] = gr.File(label="Downloads: video (.mp4) and script (.narration.json)", file_count="multiple",
                                interactive=False, elem_id="rd-files")
        _connect(studio, SimpleNamespace(**page))
    blocks.studio = studio  # tests and embedders reach the callbacks through it
    return blocks


def _request_controls(height, width, frames, max_frames, steps, guidance_scale, max_upload_mb) -> dict:
    """The left column: the image, the prompt, the generation settings and the buttons."""
    page = {"image": gr.Image(label=f"Condition image (PNG/JPEG/WebP, at most {max_upload_mb:g} MB)",
                              type="filepath", sources=["upload", "clipboard"], elem_id="rd-image", height=240),
            "prompt": gr.Textbox(label="Prompt", placeholder="A cat plays in the room", elem_id="rd-prompt")}
    with gr.Row():
        page["n_frames"] = gr.Slider(min(5, frames), max_frames, value=frames, step=4, label="Frames (4k+1)",
                                     elem_id="rd-frames")
        page["n_steps"] = gr.Slider(1, 100, value=steps, step=1, label="Steps", elem_id="rd-steps")
    with gr.Row():
        page["seed"] = gr.Number(value=0, precision=0, label="Seed", elem_id="rd-seed")
        page["mode"] = gr.Dropdown(list(MODES), value="reasondiff", label="Mode", elem_id="rd-mode")
    page["baseline"] = gr.Checkbox(label="Also render plain Wan2.1 on the same seed (side by side)",
                                   elem_id="rd-baseline")
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            page["h"] = gr.Number(value=height, precision=0, label="Height (multiple of 16)")
            page["w"] = gr.Number(value=width, precision=0, label="Width (multiple of 16)")
        page["guidance"] = gr.Number(value=guidance_scale, label="Guidance scale")
        page["negative"] = gr.Textbox(label="Negative prompt")
    with gr.Row():
        page["example_btn"] = gr.Button("Load example", elem_id="rd-example")
        page["narrate_btn"] = gr.Button("1. Narrate", variant="secondary", elem_id="rd-narrate")
        page["generate_btn"] = gr.Button("2. Generate", variant="primary", elem_id="rd-generate")
    page["status"] = gr.Markdown("Upload an image and type a prompt, or load the example.", elem_id="rd-status")
    return page


def _script_controls(frames: int) -> dict:
    """The right column: the script as a strip, a table of segments and the anchor slider."""
    gr.Markdown("### Script timeline\nOne row per run of frames (the paper's `Frame@1-20`). Edit any "
                "cell; rows may be added. The slider sets the frame where your image appears.")
    return {
        "strip": gr.HTML(elem_id="rd-strip"),
        "table": gr.Dataframe(headers=timeline.HEADERS, datatype=["number", "number", "str"], type="array",
                              column_count=3, interactive=True, wrap=True, label="Segments", elem_id="rd-table"),
        "anchor": gr.Slider(1, frames, value=1, step=1, label="Image at frame (anchor)", elem_id="rd-anchor"),
    }


def _connect(studio: Studio, page) -> None:
    """The page's events, each to its `Studio` callback."""
    script = [page.table, page.anchor, page.n_frames]
    # Why the last upload was refused, kept in the page (a hidden box: a gr.State would open a heartbeat stream).
    refused = gr.Textbox(visible=False, elem_id="rd-refused")
    page.image.upload(studio.on_upload, inputs=page.image, outputs=[page.image, page.status, refused],
                      preprocess=False)
    page.image.clear(lambda: "", outputs=refused)
    page.example_btn.click(studio.load_example, inputs=page.n_frames,
                           outputs=[page.image, page.prompt, page.table, page.anchor, page.strip, page.status])
    page.narrate_btn.click(studio.narrate, inputs=[page.image, page.prompt, page.n_frames, refused],
                           outputs=[page.table, page.anchor, page.strip, page.status])
    page.table.input(studio.preview, inputs=script, outputs=[page.strip, page.status])
    # .input, not .change: user edits only, so a narrated or loaded script keeps its own status message.
    page.anchor.input(studio.preview, inputs=script, outputs=[page.strip, page.status], trigger_mode="always_last")
    page.n_frames.release(studio.refit, inputs=script, outputs=[page.table, page.anchor, page.strip])
    page.generate_btn.click(
        studio.generate,
        inputs=[page.image, page.prompt, page.n_frames, page.n_steps, page.seed, page.mode, page.table, page.anchor,
                page.baseline, page.h, page.w, page.guidance, page.negative, refused],
        outputs=[page.video, page.base_video, page.files, page.strip, page.status], concurrency_limit=1,
        concurrency_id="pipeline",
    )


def launch(blocks: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, *, max_upload_mb: float = DEFAULT_MAX_MB,
           block: bool = True, quiet: bool = False):
    """Serve the studio: one worker, a queue, uploads capped server-side, local files limited to our outputs.

    Gradio's own start-up lines are silenced (one of them advises `share=True`, a public tunnel this local studio
    must not suggest); we print the address ourselves, then wait for Ctrl-C when `block`."""
    blocks.queue(default_concurrency_limit=1, max_size=32)
    studio = getattr(blocks, "studio", None)
    allowed = [str(studio.output_dir), str(Path(studio.example.image_path).parent)] if studio else []
    served = blocks.launch(
        server_name=host, server_port=port, share=False, show_error=True, quiet=True,
        max_file_size=f"{max_upload_mb:g}mb", allowed_paths=allowed, prevent_thread_lock=True,
        css=CSS, footer_links=[], ssr_mode=False, inbrowser=False,
    )
    if not quiet:
        print(f"studio at {blocks.local_url} (Ctrl-C to stop)", flush=True)
    if block:
        blocks.block_thread()
    return served
