from pathlib import Path

import numpy as np
import pytest

import reasondiff.mini as mini
from reasondiff.mini.judge import AGENT_CLASSES, SceneJudge, accuracy, degrade, labels, psnr, score_video
from reasondiff.mini.world import EventScript

SHIPPED = Path(mini.__file__).parent / "weights" / "judge"


def test_labels_follow_the_ground_truth():
    script = EventScript("dog", "window", "garden")
    assert labels(script, 0) == {"object": 1, "changed": 0, "agent": 0, "room": 2}
    assert labels(script, script.contact)["changed"] == 1
    assert labels(script, script.contact)["agent"] == AGENT_CLASSES.index("dog")


def test_degradation_is_seeded_and_visible():
    frame = EventScript("cat", "vase", "kitchen").render(5)
    a, b = degrade(frame, np.random.default_rng(1)), degrade(frame, np.random.default_rng(1))
    assert np.array_equal(a, b) and a.shape == frame.shape and np.abs(a.astype(int) - frame).mean() > 1


class ScriptedReader:
    def __init__(self, changed, agent):
        self.result = {"changed": np.array(changed), "agent": np.array(agent)}

    def read(self, frames):
        return self.result


@pytest.mark.parametrize("changed, expected", [([0, 0, 1, 1], True), ([0, 1, 0, 1], False), ([1, 1, 1, 1], False),
                                               ([0, 0, 0, 0], False)])
def test_causal_order_means_intact_then_changed_for_good(changed, expected):
    frames = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    score = score_video(ScriptedReader(changed, [0, 1, 1, 0]), frames, frames[3], 4, "cat")
    assert score.causal_order is expected
    assert score.agent_seen and score.anchor_psnr == float("inf") and score.smoothness == 0.0


def test_psnr_of_a_known_error():
    a = np.zeros((4, 4, 3), dtype=np.uint8)
    assert psnr(a, a + 255) == pytest.approx(0.0) and psnr(a, a + 1) == pytest.approx(48.13, abs=0.01)


def test_the_shipped_judge_reads_held_out_degraded_renders():
    judge = SceneJudge.from_pretrained(SHIPPED).eval()
    scores = accuracy(judge, num=300, seed=777)
    assert min(scores.values()) >= 0.95, scores
