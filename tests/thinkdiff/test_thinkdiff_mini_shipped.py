"""The shipped ThinkDiff-mini (src/reasondiff/mini/weights/thinkdiff): `reasondiff thinkdiff generate` runs it
offline with no options, on the bundled in-context episode; interleaved --image/--text reach the VLM in the
order given; and the command's image is exactly the one SynthWorld-CoBSAT's `thinkdiff` method draws."""

import json
from importlib import resources

import numpy as np
import PIL.Image
import pytest
from typer.testing import CliRunner

from reasondiff.cli import app
from reasondiff.example import bundled_episode
from reasondiff.mini.thinkdiff import loading
from reasondiff.mini.thinkdiff.reasoner import INSTRUCTION, ThinkDiffReasoner
from reasondiff.thinkdiff import inference

runner = CliRunner()
EXAMPLES = resources.files("reasondiff") / "assets" / "examples"


def generate(*args):
    result = runner.invoke(app, ["thinkdiff", "generate", *map(str, args)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def mini():
    decoder = loading.load_decoder(loading.shipped("decoder"))
    model, processor = loading.load_vlm(loading.shipped("vlm"))
    return decoder, ThinkDiffReasoner(model, processor, loading.load_aligner(loading.shipped("aligner"), model,
                                                                              decoder.pipe.text_encoder))


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("td") / "next.png"
    return generate("-o", out), np.asarray(PIL.Image.open(out))


def test_no_options_run_the_shipped_mini_on_the_bundled_episode(default_run, mini):
    output, image = default_run
    answer = json.loads((EXAMPLES / "thinkdiff_episode.json").read_text())["answer"]  # pig, garden
    said = output.split("LVLM: ")[1].splitlines()[0]
    assert "bundled episode (3 texts, 2 images)" in output and "RANDOM" not in output
    assert f"a {answer['agent']}" in said and f"in the {answer['room']}" in said  # the VLM reasons it out
    decoder, reasoner = mini
    tokens, text = reasoner.answer(bundled_episode())
    assert repr(text) == said
    assert image.shape == (64, 64, 3)
    np.testing.assert_array_equal(image, decoder.tokens(tokens, seed=0))  # the bench's thinkdiff image, bit for bit


def test_interleaved_texts_and_images_reach_the_vlm_in_command_line_order(default_run, tmp_path, monkeypatch):
    seen = []
    encode = inference.ThinkDiffLVLM.encode

    def spy(self, items, **kwargs):
        seen.append(list(items))
        return encode(self, items, **kwargs)

    monkeypatch.setattr(inference.ThinkDiffLVLM, "encode", spy)
    spec = json.loads((EXAMPLES / "thinkdiff_episode.json").read_text())
    args = [a for item in spec["items"] for a in (("-t", item["text"]) if "text" in item else
                                                  ("-i", EXAMPLES / item["image"]))]
    generate(*args, "-o", tmp_path / "a.png")
    assert [type(i).__name__ if not isinstance(i, str) else i for i in seen[0]] == \
        ["living room: ", "Image", "living room: ", "Image", "garden: ", INSTRUCTION]
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(tmp_path / "a.png")), default_run[1])
    generate("-i", EXAMPLES / "thinkdiff_episode_1.png", "-t", "kitchen: ", "-i", EXAMPLES / "thinkdiff_episode_2.png",
             "-p", "Describe the image.", "-o", tmp_path / "b.png")
    assert [type(i).__name__ if not isinstance(i, str) else i for i in seen[1]] == \
        ["Image", "kitchen: ", "Image", "Describe the image."]


def test_the_mini_is_a_whole_system(tmp_path):
    result = runner.invoke(app, ["thinkdiff", "generate", "--decoder", "flux", "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "--decoder and --variant do not apply" in result.output
    result = runner.invoke(app, ["thinkdiff", "generate", "--vlm", "tiny", "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "needs the --aligner" in result.output
    result = runner.invoke(app, ["thinkdiff", "generate", "--model", "tiny", "--decoder", "mini", "-p", "x"])
    assert result.exit_code == 2 and "--decoder flux|cogvideox|wan" in result.output
    result = runner.invoke(app, ["thinkdiff", "generate", "-i", str(tmp_path / "none.png")])
    assert result.exit_code == 2 and "none.png" in result.output


def test_bench_runs_on_the_shipped_parts_by_default(tmp_path):
    """`thinkdiff bench` with no model options scores the shipped system (one 1-shot episode per task here)."""
    result = runner.invoke(app, ["thinkdiff", "bench", "--shots", "1", "--cases", "1", "--seed", "1",
                                 "--methods", "thinkdiff,oracle", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "RANDOM" not in result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    details = json.loads((tmp_path / "details.json").read_text())
    assert set(summary) == {"thinkdiff", "oracle"} and all(0 <= r["accuracy"] <= 1 for r in summary.values())
    assert details["vlm_text_accuracy"]["accuracy"] >= 0.75  # the shipped VLM: 0.994 of 800 such episodes
