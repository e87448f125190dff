import numpy as np
import pytest
from evalkit import textured
from PIL import Image, ImageFilter

from reasondiff.evaluation.sharpness import Sharpness, edge_steepness


def video_of(image: Image.Image, frames: int = 5) -> np.ndarray:
    return np.stack([np.asarray(image)] * frames)


def steps(columns, ramp=1, height=120, size=32) -> Image.Image:
    """Grey staircase rising by `height` at each of `columns`, each rise spread over `ramp` pixels."""
    row = np.zeros(size)
    for column in columns:
        row[column:] += height * np.clip((np.arange(size - column) + 1) / ramp, 0, 1)
    return Image.fromarray(np.repeat(np.tile(row, (size, 1))[..., None], 3, axis=2).round().astype(np.uint8))


def test_steepness_by_hand():
    # one rise of 120 in one pixel per row: every nonzero gradient is 120
    assert edge_steepness(np.asarray(steps([8]))[None])[0] == pytest.approx(120)
    # the same rise over 4 pixels: four gradients of 30
    assert edge_steepness(np.asarray(steps([8], ramp=4))[None])[0] == pytest.approx(30)
    assert edge_steepness(np.zeros((1, 4, 4, 3), np.uint8))[0] == 0


def test_a_blurred_edge_scores_lower_and_more_edges_score_no_higher():
    image = steps([4, 20])
    sharpness = Sharpness()
    assert sharpness(video_of(image), image) == pytest.approx(1.0)
    assert sharpness(video_of(steps([4, 20], ramp=4)), image) == pytest.approx(0.25)  # same total variation
    assert sharpness(video_of(steps([12])), image) == pytest.approx(1.0)  # fewer edges, just as sharp


def test_the_image_itself_scores_one_and_blur_lowers_it_monotonically():
    image = Image.fromarray(textured(64, seed=3))
    sharpness = Sharpness()
    assert sharpness(video_of(image), image) == pytest.approx(1.0)
    scores = [sharpness(video_of(image.filter(ImageFilter.GaussianBlur(r))), image) for r in (0.5, 1, 2, 4)]
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    assert scores[-1] < 0.5


def test_noise_is_not_detail_and_frames_are_averaged():
    image = Image.fromarray(textured(64, seed=3))
    noisy = np.clip(np.asarray(image) + np.random.default_rng(0).normal(0, 40, (64, 64, 3)), 0, 255).astype(np.uint8)
    assert Sharpness()(noisy[None], image) == 1.0  # capped: steeper than the image is not better
    flat = np.full((64, 64, 3), 128, np.uint8)
    half = np.stack([np.asarray(image), flat])  # one crisp frame, one with no edge at all
    assert Sharpness()(half, image) == pytest.approx(0.5)


def test_the_image_is_resized_to_the_video_and_a_flat_image_gives_none():
    image = Image.fromarray(textured(64, seed=3))
    big = image.resize((128, 128), Image.BICUBIC)
    assert Sharpness()(video_of(image), big) == pytest.approx(1.0, abs=0.05)
    assert Sharpness()(video_of(image), Image.new("RGB", (64, 64), (90, 90, 90))) is None
