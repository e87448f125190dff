import importlib.util

import numpy as np
import pytest
from evalkit import textured

from reasondiff.evaluation.dynamic_degree import (
    DynamicDegree,
    FarnebackFlow,
    is_dynamic,
    motion_threshold,
    required_pairs,
    sampling_interval,
    top_magnitude,
)


def test_vbench_parameters():
    assert motion_threshold(256, 256) == pytest.approx(6.0)
    assert motion_threshold(480, 832) == pytest.approx(6.0 * 480 / 256)  # shorter side
    assert motion_threshold(512, 512) == pytest.approx(12.0)  # current VBench: no 8 / fps factor at any frame rate
    assert [sampling_interval(f) for f in (4, 8, 16, 24, 30)] == [1, 1, 2, 3, 4]
    assert [required_pairs(n) for n in (16, 8, 41, 2, 6)] == [4, 2, 10, 0, 2]  # round(4n/16), Python rounding


def test_top_five_percent_magnitude_on_hand_made_flow():
    flow = np.zeros((10, 10, 2))
    flow[0, :5] = (6.0, 8.0)  # 5 pixels (5 % of 100) with |flow| = 10
    assert top_magnitude(flow) == pytest.approx(10.0)
    flow[1, 0] = (0.0, 30.0)  # now the top 5 are 30, 10, 10, 10, 10
    assert top_magnitude(flow) == pytest.approx(14.0)
    assert top_magnitude(np.zeros((3, 3, 2))) == 0.0  # fewer than 20 pixels: the largest one
    with pytest.raises(ValueError, match=r"\[H, W, 2\]"):
        top_magnitude(np.zeros((4, 4)))


def test_dynamic_rule():
    assert is_dynamic([7, 7, 0, 0], threshold=6, required=2)
    assert not is_dynamic([7, 6, 6, 0], threshold=6, required=2)  # strictly above the threshold
    assert is_dynamic([0.0], threshold=6, required=0)  # as VBench: nothing required, always dynamic


def test_decision_with_a_scripted_flow():
    """16 frames of 256x256 at 8 fps: threshold 6 px, 4 of the 15 pairs must exceed it."""
    frames = np.zeros((16, 256, 256, 3), np.uint8)
    for k in range(16):
        frames[k, 0, 0, 0] = k  # the flow stub reads the pair's index from here

    def flow_moving(count):
        def flow(a, b):
            return np.full((256, 256, 2), 5.0 if a[0, 0, 0] < count else 0.0)  # |flow| = 7.07 for the first pairs
        return flow

    result = DynamicDegree(flow_moving(4)).evaluate(frames, fps=8)
    assert (result.threshold, result.required, len(result.magnitudes)) == (6.0, 4, 15)
    assert result.dynamic and result.score == 1.0
    assert DynamicDegree(flow_moving(3))(frames, fps=8) == 0.0
    # at 16 fps every second frame is used: 8 frames, 7 pairs, 2 required
    seen = []
    DynamicDegree(lambda a, b: seen.append(int(a[0, 0, 0])) or np.zeros((256, 256, 2))).evaluate(frames, fps=16)
    assert seen == [0, 2, 4, 6, 8, 10, 12]


def test_farneback_separates_a_moving_video_from_a_still_one():
    base = textured(64, seed=5)
    moving = np.stack([np.roll(base, 4 * k, axis=1) for k in range(9)])  # 4 px/frame > 1.5 px threshold at 64 px
    still = np.stack([base] * 9)
    metric = DynamicDegree(FarnebackFlow())
    moved = metric.evaluate(moving, fps=8)
    assert moved.dynamic and min(moved.magnitudes) == pytest.approx(4.0, abs=1.0)
    stayed = metric.evaluate(still, fps=8)
    assert not stayed.dynamic and max(stayed.magnitudes) < 0.1


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown flow"):
        DynamicDegree("pwc")
    with pytest.raises(ValueError, match="at least 2 frames"):
        DynamicDegree(FarnebackFlow())(np.zeros((2, 8, 8, 3), np.uint8), fps=16)
    with pytest.raises(ValueError, match="fps must be positive"):
        sampling_interval(0)


def test_auto_flow_is_raft_only_on_cuda_with_torchvision():
    from reasondiff.evaluation.dynamic_degree import resolve_flow

    assert resolve_flow("auto", "cpu") == "farneback" and DynamicDegree("auto").method == "farneback"
    has_torchvision = importlib.util.find_spec("torchvision") is not None
    assert resolve_flow("auto", "cuda") == ("raft" if has_torchvision else "farneback")
    assert resolve_flow("farneback", "cuda") == "farneback"
