"""SynthWorld's judge as `eval run` metrics: the three columns read what the rendered ground truth shows."""

import numpy as np
from PIL import Image

from reasondiff.evaluation.metrics import JUDGE_METRICS, Sample, build_metrics
from reasondiff.mini.world import EventScript


METRICS = build_metrics(list(JUDGE_METRICS))  # one set for every case, as `eval run` uses them: the judge's
# reading is shared by the three columns and must follow each new sample


def scores(frames, image, position, agent="dog"):
    sample = Sample(frames=frames, fps=8, image=Image.fromarray(image), position=position, agent=agent)
    return {m.name: m.score(sample) for m in METRICS}


def test_the_true_clip_scores_full_marks_and_its_faults_are_caught():
    script = EventScript("dog", "window", "garden", leaves=True)
    frames = script.frames(64)
    assert scores(frames, frames[-1], 17) == {"anchor_psnr": 60.0, "text_adherence": 1.0, "causal_order": 1.0}

    reversed_story = scores(frames[::-1].copy(), frames[-1], 17)  # effect before cause, image at frame 1
    assert reversed_story["causal_order"] == 0.0 and reversed_story["anchor_psnr"] < 30
    assert scores(frames, frames[-1], 17, agent="pig")["text_adherence"] == 0.0  # the prompt's agent never shows


def test_cases_without_world_ground_truth_are_not_scored():
    frames = EventScript("cat", "vase", "kitchen").frames(64)
    sample = Sample(frames=frames, fps=8, image=Image.fromarray(frames[0]))
    assert all(m.score(sample) is None for m in METRICS)
