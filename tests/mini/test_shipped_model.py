"""The shipped ReasonDiff-mini (src/reasondiff/mini/weights/reasondiff-mini): the README's main job works on
a fresh CPU machine, and the image lands where the narrator put it, which plain I2V cannot do."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from reasondiff import VisionNarrator
from reasondiff.cli import app
from reasondiff.example import bundled_example
from reasondiff.media import load_image
from reasondiff.mini.pretrained import load_pipeline
from reasondiff.mini.measures import psnr
from reasondiff.pipelines.loading import MINI_STEPS

# Measured on this example (seeds 0-2): ReasonDiff-mini's frame 17 is 27.1-27.7 dB from the image, plain I2V's
# 23.6-24.8 dB (its frame 1 is the image, at 29.7 dB). The room fills most of the frame, so even an unrelated
# frame of the same kitchen scores in the low 20s: the margin, not the absolute value, is the claim.
ANCHOR_PSNR_MIN = 26.0
MARGIN_DB = 2.0


@pytest.fixture(scope="module")
def example():
    example = bundled_example()
    image = load_image(example.image_path).resize((64, 64))
    narration = VisionNarrator("synthworld:", use_cache=False).narrate(image, example.prompt, 17)
    return example, image, narration


@pytest.fixture(scope="module")
def videos(example):
    _, image, narration = example
    pipe = load_pipeline()
    pipe.set_progress_bar_config(disable=True)
    call = dict(image=image, prompt=example[0].prompt, num_frames=17, height=64, width=64,
                num_inference_steps=MINI_STEPS, output_type="np")
    out = {}
    for mode in ("reasondiff", "wan"):
        frames = pipe(**call, mode=mode, narration=narration if mode == "reasondiff" else None,
                      generator=torch.Generator().manual_seed(0)).frames[0]
        out[mode] = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
    return out


def test_the_narrator_puts_the_broken_vase_at_the_end(example):
    _, _, narration = example
    assert narration.position == 17
    assert "intact vase" in narration.descriptions[0] and "broken vase" in narration.descriptions[-1]


def test_the_image_is_found_at_the_narrated_frame(example, videos):
    _, image, narration = example
    condition = np.asarray(image)
    ours = psnr(videos["reasondiff"][narration.position - 1], condition)
    plain = psnr(videos["wan"][narration.position - 1], condition)
    first = psnr(videos["reasondiff"][0], condition)
    assert ours >= ANCHOR_PSNR_MIN, ours
    assert ours > plain + MARGIN_DB, (ours, plain)  # plain I2V shows the image at frame 1, not at the end
    assert ours > first + MARGIN_DB, (ours, first)  # and ReasonDiff-mini does not (measured: 19.5-20.7 dB there)


def test_generate_without_arguments_uses_the_shipped_model(tmp_path):
    out = tmp_path / "example.mp4"
    result = CliRunner().invoke(app, ["generate", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" not in result.output and "<- the image" in result.output
    assert iio.imread(out).shape == (17, 64, 64, 3) and (tmp_path / "example.png").is_file()
