"""The studio's callbacks without a browser: scripts, generation, the baseline, progress and errors."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import PIL.Image
import pytest
import torch
from fakes import ScriptedNarrator

import reasondiff
from reasondiff import Narration, VisionNarrator
from reasondiff.example import bundled_example
from reasondiff.media import load_image, save_video
from reasondiff.narrator import NarrationError

gr = pytest.importorskip("gradio")
from reasondiff.app import timeline
from reasondiff.app.studio import Studio

EXAMPLE = bundled_example()


class Progress:
    def __init__(self):
        self.calls = []

    def __call__(self, value, desc=None):
        self.calls.append((value, desc))


def is_error(status):
    return 'class="rd-error"' in status and "Traceback" not in status


@pytest.fixture
def image_file(tmp_path, condition_image):
    path = tmp_path / "cond.png"
    condition_image.save(path)
    return str(path)


def studio(pipeline, tmp_path, narrator=None):
    return Studio(pipeline, narrator, output_dir=tmp_path / "out")


def generate(app, image, rows, position, *, mode="reasondiff", baseline=False, progress=None, prompt="a cat plays"):
    return app.generate(image, prompt, 17, 2, 7, mode, rows, position, baseline, 64, 64, 5.0, "",
                        progress=progress or Progress())


def test_without_a_narrator_the_example_gets_its_script_and_other_images_a_starter(tiny_pipeline, tmp_path, image_file):
    app = studio(tiny_pipeline, tmp_path)
    rows, anchor, _, note = app.narrate(str(EXAMPLE.image_path), EXAMPLE.prompt, 17)
    assert rows == timeline.to_rows(EXAMPLE.narration.resample(17))
    assert anchor["value"] == 17 and "hand-written" in note
    rows, anchor, _, note = app.narrate(image_file, "a dog runs", 9)
    assert rows == [[1, 9, "a dog runs"]] and anchor["value"] == 1
    assert "--narrator openai:gpt-4o" in note and "transformers:PATH" in note


def test_narrator_failures_and_bad_inputs_are_messages(tiny_pipeline, tmp_path, image_file):
    class Broken(ScriptedNarrator):
        def narrate(self, image, prompt, num_frames):
            raise NarrationError("no JSON object in the answer", raw="I think the vase...")

    app = studio(tiny_pipeline, tmp_path, Broken())
    *_, status = app.narrate(image_file, "a cat plays", 17)
    assert is_error(status) and "could not be read as a script: no JSON object" in status
    *_, status = app.narrate(image_file, "   ", 17)
    assert is_error(status) and "the prompt is empty" in status
    *_, status = app.narrate(None, "a cat", 17)
    assert is_error(status) and "upload a condition image" in status


def test_generate_renders_the_edited_script_and_writes_both_downloads(tiny_pipeline, tmp_path, image_file):
    narrator = ScriptedNarrator()
    app = studio(tiny_pipeline, tmp_path, narrator)
    rows, *_ = app.narrate(image_file, "a cat plays", 17)
    rows[1][2] = "a pig trots in and knocks the vase"  # prompt-driven customisation (§4.4)
    progress = Progress()
    video, base, files, strip, status = generate(app, image_file, rows, 6, progress=progress)
    assert status.startswith("Generated 17 frames") and base is None
    assert iio.imread(video).shape == (17, 64, 64, 3)
    assert sorted(p.rsplit(".", 2)[-2:][-1] for p in files) == ["json", "mp4"]
    used = Narration.from_json(Path(files[1]).read_text())
    assert used.position == 6 and used.descriptions[4] == "a pig trots in and knocks the vase"
    assert used.metadata["generation"]["seed"] == 7
    assert "the image is frame <b>6</b>" in strip
    assert [v for v, _ in progress.calls][-2:] == [(1, 2), (2, 2)]  # step-by-step progress from the pipeline

    # The same script and seed straight through the pipeline gives the same video.
    direct = reasondiff.generate(tiny_pipeline, load_image(image_file).resize((64, 64)), "a cat plays", narration=used,
                           num_frames=17,
                           height=64, width=64, num_inference_steps=2, guidance_scale=5.0, output_type="np",
                           generator=torch.Generator().manual_seed(7))
    ref = save_video(direct.frames[0], tmp_path / "direct.mp4")
    np.testing.assert_array_equal(iio.imread(video), iio.imread(ref))


def test_baseline_is_plain_wan_on_the_same_seed(tiny_pipeline, tmp_path, image_file):
    app = studio(tiny_pipeline, tmp_path)
    rows = [[1, 8, "an intact vase"], [9, 17, "a broken vase"]]
    video, base, files, _, status = generate(app, image_file, rows, 17, baseline=True)
    assert "plain-Wan baseline" in status and len(files) == 4
    wan = tiny_pipeline(load_image(image_file).resize((64, 64)), "a cat plays", num_frames=17,
                        height=64, width=64, num_inference_steps=2, guidance_scale=5.0, output_type="np",
                        generator=torch.Generator().manual_seed(7))
    ref = save_video(wan.frames[0], tmp_path / "wan.mp4")
    np.testing.assert_array_equal(iio.imread(base), iio.imread(ref))
    assert not np.array_equal(iio.imread(base), iio.imread(video))


@pytest.mark.parametrize("mode, rows, message", [
    ("reasondiff", [[1, 10, "a vase"]], "frames 11-17 have no description: the script must reach frame 17 (press Narrate"),
    ("reasondiff", [], "the script is empty"),
    ("rewrite", [], "mode 'rewrite' needs a narrator"),
    ("sideways", [], "unknown mode 'sideways'"),
])
def test_generation_errors_keep_the_page_and_explain(tiny_pipeline, tmp_path, image_file, mode, rows, message):
    app = studio(tiny_pipeline, tmp_path)
    video, base, files, strip, status = generate(app, image_file, rows, 1, mode=mode)
    assert is_error(status) and message in status
    assert all(out == gr.update() for out in (video, base, files, strip))
    assert not list((tmp_path / "out").glob("*"))


def test_unexpected_errors_are_summarised_not_dumped(tiny_pipeline, tmp_path, image_file, caplog, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(tiny_pipeline, "_denoise", out_of_memory)
    app = Studio(tiny_pipeline, None, output_dir=tmp_path)
    *_, status = generate(app, image_file, [[1, 17, "a vase"]], 1)
    assert is_error(status) and "unexpected RuntimeError: CUDA out of memory" in status
    assert "Traceback" in caplog.text  # the details go to the server log


def test_changing_the_frame_count_retells_the_script(tiny_pipeline, tmp_path):
    app = studio(tiny_pipeline, tmp_path)
    rows = timeline.to_rows(EXAMPLE.narration.resample(17))
    new_rows, anchor, _ = app.refit(rows, 17, 33)
    script = timeline.from_rows(new_rows, anchor["value"], 33)
    assert script.num_frames == 33 and script.position == 33 and anchor["maximum"] == 33
    assert [s.description for s in script.segments()] == [r[2] for r in rows]
    unchanged, anchor, _ = app.refit([], 5, 9)  # nothing valid to retell: only the anchor's range moves
    assert unchanged == gr.update() and anchor["maximum"] == 9 and anchor["value"] == 5


def test_after_a_refused_upload_narrate_and_generate_say_why_there_is_no_image(tiny_pipeline, tmp_path):
    """A refused upload clears the image; Narrate and Generate used to answer only "no image: upload a
    condition image", as if nothing had been uploaded."""
    notes = tmp_path / "notes.png"
    notes.write_text("these are my notes, not a picture\n")
    app = studio(tiny_pipeline, tmp_path, ScriptedNarrator())
    image, status, refused = app.on_upload({"path": str(notes)})
    assert image is None and is_error(status) and "notes.png is not an image: it is text" in status
    *_, status = app.narrate(None, "a cat plays", 17, refused)
    assert is_error(status) and "the last upload was not used, because notes.png is not an image: it is text" in status
    *_, status = app.generate(None, "a cat plays", 17, 2, 7, "reasondiff", [[1, 17, "a vase"]], 1, False, 64, 64,
                              5.0, "", refused, progress=Progress())
    assert is_error(status) and "notes.png is not an image" in status
    *_, status = app.narrate(None, "a cat plays", 17)  # nothing uploaded yet: what to upload
    assert "no image: upload a condition image (PNG, JPEG, WebP, BMP or GIF, at most 10 MB)" in status


def test_a_very_large_upload_is_resized_and_narrated(tiny_pipeline, tmp_path):
    """41 megapixels were refused at upload, then Narrate said only "no image"; now the picture is shrunk."""
    big = tmp_path / "big.png"
    load_image(EXAMPLE.image_path).resize((6400, 6400), PIL.Image.NEAREST).save(big, compress_level=1)
    app = studio(tiny_pipeline, tmp_path, VisionNarrator("synthworld:", use_cache=False))
    image, status, refused = app.on_upload({"path": str(big)})
    assert image == gr.update() and refused == ""
    assert status.startswith("Image ready (2048x2048; resized from 6400x6400 to 2048x2048")
    rows, anchor, _, note = app.narrate(str(big), EXAMPLE.prompt, 17, refused)
    assert anchor["value"] == 17 and rows == timeline.to_rows(EXAMPLE.narration)
