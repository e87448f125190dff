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
    # uncapped: a third edge of the same kind leaves the steepness where it was (a mean gradient would grow)
    assert edge_steepness(np.asarray(steps([4, 12, 20], height=80))[None])[0] == pytest.approx(80)


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


def test_sizes_flat_images_and_empty_videos():
    image = Image.fromarray(textured(64, seed=3))
    big = image.resize((128, 128), Image.BICUBIC)
    assert Sharpness()(video_of(image), big) == pytest.approx(1.0, abs=0.05)
    assert Sharpness()(video_of(image), Image.new("RGB", (64, 64), (90, 90, 90))) is None
    # a smaller image is not enlarged (a blurred reference would rate a blurred video as crisp as a sharp
    # one): the video is shrunk to the image instead, and blur still shows
    small = steps([2, 10], size=32)
    scores = [Sharpness()(video_of(steps([4, 20], ramp=ramp, size=64)), small) for ramp in (1, 2, 4)]
    assert scores[0] > scores[1] + 0.1 and scores[1] > scores[2] + 0.1, scores
    with pytest.raises(ValueError, match="expected uint8 frames"):
        Sharpness()(np.zeros((0, 8, 8, 3), np.uint8), small)
