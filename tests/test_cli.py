import json

import imageio.v3 as iio
import pytest
from diffusers import WanImageToVideoPipeline
from fakes import VASE_STORY, ScriptedChat
from helpers import reasondiff_pipeline
from typer.testing import CliRunner

from reasondiff import Narration, __version__
from reasondiff.cli import app
from reasondiff.example import bundled_example
from reasondiff.models import tiny_wan
from reasondiff.narrator import NarratorConnectionError, register_backend

runner = CliRunner()
SMALL = ["--steps", "2", "--frames", "17", "--height", "64", "--width", "64"]  # any model at the tiny size
FAST = ["--model", "tiny", *SMALL]


def invoke(*args):
    return runner.invoke(app, ["generate", *args])


def test_help_and_version():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("generate", "narrate", "demo", "doctor", "--quiet", "--version", "reasondiff doctor", "Exit codes"):
        assert word in result.output, word
    result = invoke("--help")
    assert result.exit_code == 0 and "4k+1" in result.output and "--narration" in result.output
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"reasondiff {__version__}"


@pytest.mark.parametrize("command", ["generate", "narrate", "demo", "doctor", "train"])
def test_every_command_explains_itself_with_examples(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Examples" in result.output and f"reasondiff {command}" in result.output


def test_bundled_example_writes_a_playable_video_and_its_narration(tmp_path):
    out = tmp_path / "clip.mp4"
    result = invoke("-o", str(out), *FAST)
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" in result.output  # the tiny model says plainly what it is
    assert "frames  14-17" in result.output and "<- the image" in result.output  # the script is printed
    assert iio.imread(out).shape == (17, 64, 64, 3)
    sheet = iio.imread(tmp_path / "clip.png")
    assert sheet.shape[0] == 64 + 18 and sheet.shape[1] == 6 * (64 + 4)  # six key frames incl. the anchor
    narration = Narration.from_json((tmp_path / "clip.narration.json").read_text())
    assert narration.position == 17 and narration.num_frames == 17
    assert narration.descriptions == bundled_example().narration.resample(17).descriptions
    generation = narration.metadata["generation"]
    assert generation["prompt"] == "A cat plays in the room" and generation["seed"] == 0
    assert generation["mode"] == "reasondiff"


def test_a_user_narration_drives_the_video(tmp_path, condition_image):
    image, script = tmp_path / "in.png", tmp_path / "script.json"
    condition_image.save(image)
    script.write_text(VASE_STORY.to_json())
    out = tmp_path / "cat.gif"
    result = invoke("-i", str(image), "-p", "a cat plays", "-n", str(script), "-o", str(out), *FAST)
    assert result.exit_code == 0, result.output
    assert iio.imread(out).shape[0] == 17
    written = Narration.from_json((tmp_path / "cat.narration.json").read_text())
    assert written.descriptions == VASE_STORY.descriptions and written.position == VASE_STORY.position


def test_wan_mode_needs_no_narration(tmp_path, condition_image):
    image = tmp_path / "in.png"
    condition_image.save(image)
    result = invoke("-i", str(image), "-p", "a cat plays", "--mode", "wan", "-o", str(tmp_path / "w.mp4"), *FAST)
    assert result.exit_code == 0, result.output
    written = Narration.from_json((tmp_path / "w.narration.json").read_text())
    assert written.position == 1 and set(written.descriptions) == {"a cat plays"}


def test_generate_loads_saved_pipelines(tmp_path):
    reasondiff_pipeline().save_pretrained(tmp_path / "rd")
    result = invoke("--model", str(tmp_path / "rd"), "-o", str(tmp_path / "a.mp4"), *SMALL)
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" not in result.output
    assert iio.imread(tmp_path / "a.mp4").shape == (17, 64, 64, 3)

    WanImageToVideoPipeline(**tiny_wan.wan_components(seed=0)).save_pretrained(tmp_path / "wan")
    result = invoke("--model", str(tmp_path / "wan"), "-o", str(tmp_path / "b.mp4"), *SMALL)
    assert result.exit_code == 2 and "needs an AlignFormer" in result.output
    tiny_wan.alignformer(seed=0).save_pretrained(tmp_path / "align")
    result = invoke("--model", str(tmp_path / "wan"), "--alignformer", str(tmp_path / "align"),
                    "-o", str(tmp_path / "b.mp4"), *SMALL)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--frames", "16"], "4k+1"),
        (["--image", "missing.png"], "not found"),
        (["--height", "60"], "multiples of 16"),
        (["-o", "video.avi"], ".mp4"),
        (["--steps", "0"], "at least 1"),
        (["--prompt", " "], "prompt is empty"),
        (["--mode", "magic"], "unknown mode"),
        (["--frames", "33", "--narration", "{script}"], "describes 17 frames"),
        (["--narration", "{bad}"], "not a valid narration"),
        (["--narration", "missing.json"], "narration file not found"),
        (["--model", "tiny", "--image", "{image}", "--prompt", "a dog"], "needs a frame-wise script"),
        (["--model", "tiny", "--mode", "rewrite"], "needs a narrator"),
        (["--model", "{nowhere}"], "could not load model"),
        (["--narrator", "nonsense"], "NAME:TARGET"),
        (["--bogus-option"], "No such option"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(args, message, tmp_path, monkeypatch, condition_image):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "script.json").write_text(VASE_STORY.to_json())
    (tmp_path / "bad.json").write_text(json.dumps({"position": 30, "descriptions": ["a"] * 17}))
    condition_image.save(tmp_path / "in.png")
    paths = {"script": "script.json", "bad": "bad.json", "image": "in.png", "nowhere": str(tmp_path / "no_model")}
    result = invoke(*[a.format(**paths) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_text("not an image")
    result = invoke("--image", str(fake), "-o", str(tmp_path / "v.mp4"))
    assert result.exit_code == 2
    assert "photo.png is not a readable image" in result.output
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize("mode", ["reasondiff", "rewrite"])
def test_a_narrator_backend_writes_the_script(tmp_path, condition_image, monkeypatch, mode):
    from reasondiff.narrator import register_backend

    answer = VASE_STORY.to_json() if mode == "reasondiff" else "a cat plays and breaks a vase"
    backend = ScriptedChat(answer, cache_id="scripted-cli-test")
    register_backend("scriptedcli", lambda target, **options: backend, replace=True)
    monkeypatch.setenv("REASONDIFF_CACHE", str(tmp_path / "cache"))
    condition_image.save(tmp_path / "in.png")
    result = invoke("-i", str(tmp_path / "in.png"), "-p", "a cat plays", "--narrator", "scriptedcli:any",
                    "--mode", mode, "-o", str(tmp_path / "n.mp4"), *FAST)
    assert result.exit_code == 0, result.output
    assert len(backend.conversations) >= 1
    written = Narration.from_json((tmp_path / "n.narration.json").read_text())
    if mode == "reasondiff":
        assert written.descriptions == VASE_STORY.descriptions and written.position == 17
    else:
        assert written.metadata["generation"]["prompt_used"] == answer


def test_quiet_prints_nothing_but_still_writes(tmp_path):
    out = tmp_path / "q.mp4"
    result = runner.invoke(app, ["--quiet", "generate", "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "denoising" not in result.stderr
    assert iio.imread(out).shape[0] == 17
    loud = runner.invoke(app, ["generate", "-o", str(tmp_path / "l.mp4"), *FAST])
    assert "wrote" in loud.stdout and "denoising (reasondiff)" in loud.stderr and "2/2" in loud.stderr


def test_quiet_and_verbose_together_is_a_usage_error():
    result = runner.invoke(app, ["--quiet", "--verbose", "doctor"])
    assert result.exit_code == 2 and "contradict" in result.output


def test_a_narrator_that_fails_while_running_exits_1(tmp_path, monkeypatch):
    class Unreachable:
        cache_id = "down@http://127.0.0.1:9"

        def chat(self, conversation, *, json_schema=None):
            raise NarratorConnectionError("cannot connect to http://127.0.0.1:9")

        def chat_batch(self, conversations, *, json_schema=None):
            return [self.chat(c) for c in conversations]

    monkeypatch.setenv("REASONDIFF_CACHE", str(tmp_path / "cache"))
    register_backend("unreachabletest", lambda target, **kw: Unreachable(), replace=True)
    result = runner.invoke(app, ["generate", "-i", str(bundled_example().image_path), "-p", "a cat plays",
                                 "--narrator", "unreachabletest:x", "-o", str(tmp_path / "x.mp4"), *FAST])
    assert result.exit_code == 1 and "cannot connect" in result.output
    assert not (tmp_path / "x.mp4").exists()


def test_doctor_exits_1_exactly_when_it_finds_a_problem():
    result = runner.invoke(app, ["doctor"])
    problems = int(result.output.strip().splitlines()[-1].split()[0])  # "N problem(s)[: names]"
    assert "[narrator]" in result.output and result.exit_code == (1 if problems else 0)
