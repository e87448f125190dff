"""Faults a user can hit with `generate` and `narrate`: each ends in one line, early, before any model loads."""

import os
import time

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from reasondiff.cli import app
from reasondiff.example import bundled_example
from reasondiff.mini.world import EventScript

runner = CliRunner()


def errors_of(result):
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def one_line_exit_2(result, *needles):
    assert result.exit_code == 2, result.output
    (line,) = errors_of(result)
    for needle in needles:
        assert needle in line, (needle, line)
    assert "Traceback" not in result.output
    return line


def noisy_photo(path):
    """A noisy gradient: a photo-like picture with no SynthWorld palette (the trial's 'stormy house')."""
    x = np.linspace(0, 255, 64).round()
    pixels = np.stack([np.broadcast_to(x[None], (64, 64)), np.broadcast_to(x[:, None], (64, 64)),
                       np.full((64, 64), 90.0)], -1)
    pixels = np.clip(pixels + np.random.default_rng(0).normal(0, 30, pixels.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_an_output_whose_parent_is_a_file_is_refused_before_any_work(tmp_path, no_model):
    (tmp_path / "some_file.png").write_bytes(b"x")
    out = tmp_path / "some_file.png" / "out.mp4"
    result = runner.invoke(app, ["generate", "-o", str(out)])
    one_line_exit_2(result, str(out), "some_file.png is a file")


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, no_model):
    if os.geteuid() == 0:  # root writes through permission bits: use a folder nobody can create files in
        out = "/proc/reasondiff-no-such-folder/out.mp4"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        out = str(locked / "out.mp4")
    result = runner.invoke(app, ["generate", "-o", out])
    one_line_exit_2(result, out, "not writable")


@pytest.mark.parametrize("frames", ["1001", "100001"])
def test_frames_beyond_the_models_limit_stop_at_once(frames, tmp_path, no_model):
    start = time.perf_counter()
    result = runner.invoke(app, ["generate", "--frames", frames, "-o", str(tmp_path / "x.mp4")])
    one_line_exit_2(result, f"--frames {frames}", "at most 253 frames")
    assert time.perf_counter() - start < 10  # the synthworld narrator must not render 4 x 100001 frames first


def test_frames_beyond_the_limit_also_stop_in_the_pipeline_before_the_narrator():
    from fakes import ScriptedNarrator
    from helpers import reasondiff_pipeline

    narrator = ScriptedNarrator()
    with pytest.raises(ValueError, match="at most 125 frames"):  # the tiny DiT's rotary table: 32 latent frames
        reasondiff_pipeline()(Image.new("RGB", (64, 64)), "a cat", narrator=narrator, num_frames=1001,
                              height=64, width=64)
    assert narrator.calls == []


def test_synthworld_narrator_bounds_its_own_loop():
    from reasondiff.mini.narrator import narrate_world

    image = Image.fromarray(EventScript("cat", "vase", "kitchen").render(16))
    start = time.perf_counter()
    with pytest.raises(ValueError, match="at most 253 frames"):
        narrate_world(image, "a cat plays", 100001)
    assert time.perf_counter() - start < 1


def test_steps_are_bounded(tmp_path, no_model):
    result = runner.invoke(app, ["generate", "--steps", "99999999999", "-o", str(tmp_path / "x.mp4")])
    one_line_exit_2(result, "at most 1000")


def test_zero_frames_says_what_a_frame_count_must_be(tmp_path, no_model):
    result = runner.invoke(app, ["generate", "--frames", "0", "-o", str(tmp_path / "x.mp4")])
    line = one_line_exit_2(result, "at least 1 frame", "4k+1")
    assert "1 and 1" not in line


def test_a_users_photo_on_mini_is_refused_before_loading_and_says_how_to_go_on(tmp_path, no_model):
    photo = noisy_photo(tmp_path / "photo.png")
    result = runner.invoke(app, ["generate", "-i", str(photo), "-p", "a cat plays in the room",
                                 "-o", str(tmp_path / "x.mp4")])
    line = one_line_exit_2(result, "cannot read this image", "-n script.json", "--model", "--narrator")
    assert "kitchen" in line and "vase" in line  # what it does understand
    assert not (tmp_path / "x.mp4").exists()


def test_world_narrator_refuses_a_photo_and_a_prompt_without_its_agents(tmp_path):
    from reasondiff.narrator import VisionNarrator

    narrator = VisionNarrator("synthworld:", use_cache=False)
    photo = Image.open(noisy_photo(tmp_path / "storm.png"))
    with pytest.raises(ValueError, match="cannot read this image") as refused:
        narrator.narrate(photo, "a storm hits the house", 17)
    assert "cat, dog, pig, ball" in str(refused.value)
    world = Image.open(bundled_example().image_path)
    with pytest.raises(ValueError, match="none of its agents in the prompt 'a storm hits the house'"):
        narrator.narrate(world, "a storm hits the house", 17)
    assert narrator.narrate(world, "a dog plays", 17).position == 17  # a world picture and an agent still work


def test_a_storm_prompt_on_mini_exits_2_before_loading(tmp_path, no_model):
    result = runner.invoke(app, ["generate", "-p", "a storm hits the house", "-o", str(tmp_path / "x.mp4")])
    one_line_exit_2(result, "none of its agents", "cat, dog, pig, ball")


def test_frames_other_than_minis_trained_length_are_warned_about(tmp_path, monkeypatch):
    import reasondiff.pipelines.loading as loading

    def stop(*args, **kwargs):
        raise ValueError("stopped here by the test")

    monkeypatch.setattr(loading, "load_pipeline", stop)
    result = runner.invoke(app, ["generate", "--frames", "81", "-o", str(tmp_path / "x.mp4")])
    assert "stopped here by the test" in result.output  # the warning came before the model, and did not stop it
    assert "warning: mini was trained on 17-frame videos" in result.output and "--frames 17" in result.output
    result = runner.invoke(app, ["generate", "-o", str(tmp_path / "x.mp4")])
    assert "warning" not in result.output


def test_help_shows_flags_without_a_type():
    for command in ([], ["narrate"], ["generate"], ["data", "sample"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0
        assert "<bool>" not in result.output, command
    assert "<int>" in runner.invoke(app, ["generate", "--help"]).output  # options with values keep their type


@pytest.mark.parametrize("command", [["generate"], ["narrate"], ["demo"], ["eval", "run"]])
def test_every_narrating_command_takes_a_per_request_timeout(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "--timeout" in result.output


def test_narrate_help_and_defaults_fit_the_mini_model(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONDIFF_CACHE", str(tmp_path / "cache"))
    result = runner.invoke(app, ["narrate", "--help"])
    assert "--narrator synthworld: --frames 17" in " ".join(result.output.split())
    frame = tmp_path / "frame.png"
    Image.fromarray(EventScript("dog", "glass", "garden").render(16)).save(frame)
    out = tmp_path / "frame.narration.json"
    result = runner.invoke(app, ["narrate", "-i", str(frame), "-p", "a dog plays", "--narrator", "synthworld:",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("17 frames; the image is frame 17")  # 17 by default for synthworld:


def test_narrate_checks_its_output_before_asking(tmp_path):
    (tmp_path / "a_file").write_text("x")
    frame = tmp_path / "frame.png"
    Image.fromarray(EventScript("dog", "glass", "garden").render(16)).save(frame)
    result = runner.invoke(app, ["narrate", "-i", str(frame), "-p", "a dog plays", "--narrator", "synthworld:",
                                 "-o", str(tmp_path / "a_file" / "s.json")])
    one_line_exit_2(result, "a_file is a file")


def test_doctor_suggests_hf_download_and_does_not_say_only_tiny_runs_on_cpu(monkeypatch, tmp_path):
    import torch

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # nothing downloaded
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = runner.invoke(app, ["doctor"])
    assert "hf download Wan-AI/" in result.output and "huggingface-cli" not in result.output
    assert "--model tiny runs on CPU" not in result.output
    assert "--model mini" in result.output


def test_an_image_too_large_to_open_is_one_line(tmp_path, no_model, monkeypatch):
    import PIL.Image

    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 100)  # 64x64 is now over twice the limit: a "bomb"
    result = runner.invoke(app, ["generate", "-i", str(tmp_path / "big.png"), "-o", str(tmp_path / "x.mp4")])
    one_line_exit_2(result, "big.png is too large to open safely")


def test_the_studio_refuses_frames_beyond_the_model_at_once(no_model):
    result = runner.invoke(app, ["demo", "--frames", "1001"])
    one_line_exit_2(result, "at most 253 frames")


def test_quiet_hides_the_libraries_loading_bars_too(tmp_path):
    result = runner.invoke(app, ["--quiet", "generate", "--steps", "1", "-o", str(tmp_path / "q.mp4")])  # mini
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == ""


def test_a_write_that_fails_midway_keeps_the_old_outputs_and_leaves_no_partials(tmp_path, monkeypatch):
    import errno

    import reasondiff.media as media

    out = tmp_path / "clip.mp4"
    fast = ["generate", "--model", "tiny", "--steps", "1", "-o", str(out)]
    assert runner.invoke(app, fast).exit_code == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(media, "save_contact_sheet", full_disk)  # the third file: two are already written
    result = runner.invoke(app, [*fast, "--seed", "5"])
    assert result.exit_code == 1
    (line,) = errors_of(result)
    assert "could not write" in line and "No space left" in line
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
