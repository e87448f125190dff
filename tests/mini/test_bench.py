"""SynthWorld-Bench v2's builder: held-out scenes, checked against the training set, in the documented layout."""

import json

import numpy as np
import pytest

from reasondiff.evaluation.manifest import read_manifest
from reasondiff.mini.bench import NearestTraining, build_synthworld
from reasondiff.mini.splits import HELD_OUT_PAIRS, training_clips
from reasondiff.mini.world import HELD_OUT_OBJECT_BANDS, EventScript, draw_object_x, sample_script


def test_one_band_draws_exactly_what_the_training_data_always_drew():
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert draw_object_x(a) == b.uniform(0.42, 0.58)
    xs = [draw_object_x(np.random.default_rng(i), HELD_OUT_OBJECT_BANDS) for i in range(300)]
    assert all(0.30 <= x <= 0.38 or 0.62 <= x <= 0.70 for x in xs) and min(xs) < 0.38 and max(xs) > 0.62


def test_nearest_training_distance_is_zero_for_a_training_frame_and_large_for_a_held_out_scene():
    nearest = NearestTraining(clips=40)
    clip = next(iter(training_clips(1))).frames
    assert nearest.image(clip[5]) == pytest.approx(0.0, abs=1e-3) and nearest.clip(clip) == pytest.approx(0.0, abs=1e-3)
    held_out = sample_script(np.random.default_rng(1), object_bands=HELD_OUT_OBJECT_BANDS).frames(64)
    assert nearest.clip(held_out) > 5.0


@pytest.mark.parametrize("split", ["unpaired", "unseen-pairs", "counterfactual"])
def test_build_writes_held_out_cases_with_their_truth(tmp_path, split):
    report = build_synthworld(tmp_path, split, 8, seed=4, train_clips=40, log=lambda m: None)
    rows = [json.loads(line) for line in (tmp_path / "benchmark.jsonl").read_text().splitlines()]
    assert len(rows) == 8 == report["cases"] and len({r["id"] for r in rows}) == 8
    assert min(r["nn_image_distance"] for r in rows) >= 5.0 and report["nn_image_distance"]["min"] >= 5.0
    for row in rows:
        script = EventScript(**row["world"])
        frames = script.frames(64)
        image = np.asarray(__import__("PIL.Image").Image.open(tmp_path / row["image"]))
        assert np.array_equal(image, frames[row["position"] - 1])  # position: the 1-based true frame of the image
        assert (tmp_path / row["truth"]).stat().st_size > 0 and row["frames"] == 17
        assert any(lo <= script.object_x <= hi for lo, hi in HELD_OUT_OBJECT_BANDS)
        assert row["prompt"] == f"a {script.agent} plays in the {script.room}"
    if split == "unseen-pairs":
        assert all((r["agent"], r["object"]) in HELD_OUT_PAIRS for r in rows)
    if split == "counterfactual":  # four prompts, four agents, one image without an agent
        for group in (rows[:4], rows[4:]):
            assert len({r["image"] for r in group}) == 4 and len({r["agent"] for r in group}) == 4
            images = [np.asarray(__import__("PIL.Image").Image.open(tmp_path / r["image"])) for r in group]
            assert all(np.array_equal(images[0], im) for im in images) and {r["position"] for r in group} <= {1, 17}
    assert len(read_manifest(tmp_path / "benchmark.jsonl")) == 8  # `eval run` / `eval score` read it as it is


def test_a_seed_gives_the_same_benchmark_and_another_seed_another(tmp_path):
    build_synthworld(tmp_path / "a", "unpaired", 3, seed=1, train_clips=20, log=lambda m: None)
    build_synthworld(tmp_path / "b", "unpaired", 3, seed=1, train_clips=20, log=lambda m: None)
    build_synthworld(tmp_path / "c", "unpaired", 3, seed=2, train_clips=20, log=lambda m: None)
    read = lambda d: [json.loads(x)["world"] for x in (tmp_path / d / "benchmark.jsonl").read_text().splitlines()]
    assert read("a") == read("b") != read("c")


def test_a_distance_no_held_out_scene_can_keep_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="min-distance"):
        build_synthworld(tmp_path, "unpaired", 1, train_clips=20, min_distance=500.0, log=lambda m: None)
