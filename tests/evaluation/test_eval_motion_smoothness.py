import importlib.util

import numpy as np
import pytest
from evalkit import textured

from reasondiff.evaluation.motion_smoothness import FlowInterpolator, LinearBlend, MotionSmoothness, smoothness_from_frames


def flat_video(values, size=8):
    return np.stack([np.full((size, size, 3), v, np.uint8) for v in values])


def test_formula_on_hand_made_frames():
    # a linear fade: every odd frame is exactly the mean of its even neighbours -> perfectly smooth
    assert MotionSmoothness(LinearBlend())(flat_video([0, 10, 20, 30, 40])) == pytest.approx(1.0)
    # odd frames 51 above the blend of their neighbours: (255 - 51) / 255
    assert MotionSmoothness(LinearBlend())(flat_video([0, 51, 0, 51, 0])) == pytest.approx(0.8)
    # per-odd-frame diffs 51 and 102 -> mean 76.5 -> (255 - 76.5) / 255
    assert MotionSmoothness(LinearBlend())(flat_video([0, 51, 0, 102, 0])) == pytest.approx((255 - 76.5) / 255)
    # an even frame count: the last odd frame has no right neighbour and is not scored (as VBench)
    assert MotionSmoothness(LinearBlend())(flat_video([0, 0, 0, 255])) == pytest.approx(1.0)


def test_formula_with_given_interpolations():
    frames = flat_video([0, 100, 0, 200, 0])
    interpolated = [np.full((8, 8, 3), 90, np.uint8), np.full((8, 8, 3), 210, np.uint8)]  # off by 10 each
    assert smoothness_from_frames(frames, interpolated) == pytest.approx(245 / 255)
    with pytest.raises(ValueError, match="interpolated frames"):
        smoothness_from_frames(frames, [])


def test_the_interpolator_sees_even_frames_in_order():
    calls = []

    def spy(a, b):
        calls.append((int(a[0, 0, 0]), int(b[0, 0, 0])))
        return a

    MotionSmoothness(spy)(flat_video([0, 1, 2, 3, 4, 5, 6]))
    assert calls == [(0, 2), (2, 4), (4, 6)]


def test_flow_interpolation_follows_motion_better_than_blending():
    base = textured(64, seed=3)
    video = np.stack([np.roll(base, 2 * k, axis=1) for k in range(9)])  # 2 px per frame to the right
    flow, blend = MotionSmoothness(FlowInterpolator())(video), MotionSmoothness(LinearBlend())(video)
    assert 0.0 <= blend < flow <= 1.0
    assert flow > 0.97  # a uniform translation is what a flow interpolator predicts well
    static = np.stack([base] * 5)
    assert MotionSmoothness("farneback")(static) == pytest.approx(1.0)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="at least 3 frames"):
        MotionSmoothness("linear")(flat_video([0, 1]))
    with pytest.raises(ValueError, match="unknown interpolator"):
        MotionSmoothness("amt")
    with pytest.raises(ValueError, match="returned"):
        MotionSmoothness(lambda a, b: a[:4])(flat_video([0, 1, 2]))


def test_auto_uses_vbench_amt_only_when_it_and_its_weights_are_here(monkeypatch, tmp_path):
    from reasondiff.evaluation import motion_smoothness

    assert importlib.util.find_spec("vbench") is None  # our machines: Farneback, and the run records it
    assert motion_smoothness.resolve_interpolator("auto") == "farneback" and MotionSmoothness("auto").method == "farneback"
    assert motion_smoothness.resolve_interpolator("linear") == "linear"
    with pytest.raises(ImportError, match="needs the vbench package"):
        motion_smoothness.AmtInterpolator(tmp_path / "amt-s.pth")
