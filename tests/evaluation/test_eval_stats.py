"""Bootstrap intervals: they hold the mean, shrink with more cases, and a paired difference sees through case noise."""

import numpy as np
import pytest

from reasondiff.evaluation.stats import bootstrap_ci, mean_ci, paired_difference


def test_interval_holds_the_mean_and_shrinks_with_more_cases():
    rng = np.random.default_rng(0)
    small, large = rng.random(20), rng.random(2000)
    lo, hi = bootstrap_ci(small)
    assert lo < small.mean() < hi
    lo2, hi2 = bootstrap_ci(large)
    assert hi2 - lo2 < (hi - lo) / 5
    assert bootstrap_ci(small, seed=3) == bootstrap_ci(small, seed=3)
    # a 0/1 score at p = 0.5 over 200 cases: the interval is about ±1.96 * sqrt(.25 / 200) = ±0.069
    lo, hi = bootstrap_ci([0, 1] * 100)
    assert hi - lo == pytest.approx(0.139, abs=0.02)


def test_paired_difference_cancels_what_the_cases_share():
    rng = np.random.default_rng(1)
    difficulty = rng.normal(0, 1, 100)  # per-case noise both methods share
    a = {f"c{i}": d + 0.1 for i, d in enumerate(difficulty)}
    b = {f"c{i}": d for i, d in enumerate(difficulty)}
    diff = paired_difference(a, b)
    assert diff["mean"] == pytest.approx(0.1) and diff["ci95"][0] == pytest.approx(0.1) and diff["n"] == 100
    unpaired = np.array(bootstrap_ci(list(a.values()))) - np.array(bootstrap_ci(list(b.values()))[::-1])
    assert unpaired[0] < 0 < unpaired[1]  # two separate intervals would have called it a tie


def test_empty_and_missing_values():
    assert mean_ci([None, 1.0, 3.0]) == {"mean": 2.0, "ci95": [1.0, 3.0], "n": 2}
    assert mean_ci([])["n"] == 0 and np.isnan(mean_ci([])["mean"])
    assert paired_difference({"a": 1.0, "b": None}, {"a": 0.5, "c": 2.0})["n"] == 1


def test_cases_that_share_an_image_are_resampled_together():
    """The counterfactual split asks four prompts of each image: a method's luck on an image is shared by its four
    cases, so the interval must be the one over images (about twice as wide here), not over cases."""
    from reasondiff.evaluation.stats import cluster_bootstrap_ci

    per_image = np.random.default_rng(2).random(25)
    values, images = np.repeat(per_image, 4), np.repeat([f"img{i}" for i in range(25)], 4)
    lo, hi = cluster_bootstrap_ci(values, images)
    assert (lo, hi) == pytest.approx(bootstrap_ci(per_image), abs=0.03)  # the bootstrap of the 25 images
    case_lo, case_hi = bootstrap_ci(values)
    assert hi - lo > 1.6 * (case_hi - case_lo)
    assert mean_ci(list(values), clusters=list(images))["clusters"] == 25
    a = {f"c{i}": float(v) for i, v in enumerate(values)}
    b = {key: 0.0 for key in a}
    clustered = paired_difference(a, b, clusters={f"c{i}": image for i, image in enumerate(images)})
    plain = paired_difference(a, b)
    assert clustered["mean"] == plain["mean"] and clustered["clusters"] == 25
    assert np.diff(clustered["ci95"])[0] > 1.6 * np.diff(plain["ci95"])[0]
