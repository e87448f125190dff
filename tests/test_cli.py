import json

import imageio.v3 as iio
import pytest
from diffusers import WanImageToVideoPipeline
from typer.testing import CliRunner

from reasondiff import __version__
from reasondiff.cli import app
from reasondiff.models import tiny

runner = CliRunner()
FAST = ["--steps", "2", "--num-frames", "9"]


def test_help_and_version():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "generate" in result.output
    result = runner.invoke(app, ["generate", "--help"])
    assert result.exit_code == 0 and "4k+1" in result.output
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_generate_writes_a_video_and_its_settings(tmp_path):
    out = tmp_path / "cat.mp4"
    result = runner.invoke(app, ["generate", "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" in result.output  # the tiny default says plainly what it is
    frames = iio.imread(out)
    assert frames.shape == (9, 64, 64, 3)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["prompt"] == "A cat plays in the room" and record["num_frames"] == 9 and record["seed"] == 0


def test_generate_gif(tmp_path):
    out = tmp_path / "cat.gif"
    result = runner.invoke(app, ["generate", "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert iio.imread(out).shape[0] == 9


def test_generate_loads_a_local_diffusers_folder(tmp_path):
    WanImageToVideoPipeline(**tiny.wan_components(seed=0)).save_pretrained(tmp_path / "wan")
    out = tmp_path / "v.mp4"
    result = runner.invoke(app, ["generate", "--model", str(tmp_path / "wan"), "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" not in result.output
    assert iio.imread(out).shape == (9, 64, 64, 3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--num-frames", "16"], "4k+1"),
        (["--image", "missing.png"], "not found"),
        (["--height", "60"], "multiples of 16"),
        (["-o", "video.avi"], ".mp4"),
        (["--steps", "0"], "at least 1"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["generate", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_text("not an image")
    result = runner.invoke(app, ["generate", "--image", str(fake), "-o", str(tmp_path / "v.mp4")])
    assert result.exit_code == 2
    assert "photo.png is not a readable image" in result.output
    assert not (tmp_path / "v.mp4").exists()
