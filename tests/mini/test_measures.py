"""SynthWorld-Bench v2 measures: true clips pass, every cheap way to fool them fails.

The rules are checked twice: with an exact reader (the world's palette, so only the rules are under test)
and with the shipped judge (so the measure as `eval score` runs it is under test)."""

import numpy as np
import pytest

from reasondiff.mini.degenerate import KINDS, degenerate
from reasondiff.mini.judge import AGENT_CLASSES, OBJECT_CLASSES, ROOM_CLASSES
from reasondiff.mini.measures import judge_video, smooth, text_adherence
from reasondiff.mini.world import AGENTS, HELD_OUT_OBJECT_BANDS, OBJECT_COLOURS, ROOMS, EventScript, sample_script


class PaletteReader:
    """Reads clean renders exactly from the world's colours: the judge's job done perfectly."""

    def read(self, frames):
        out = {k: [] for k in ("object", "changed", "agent", "room", "agent_x", "object_x")}
        for frame in frames:
            room = max(ROOMS, key=lambda r: np.all(frame == ROOMS[r][0], axis=-1).sum())
            counts = {key: np.all(frame == colour, axis=-1) for key, colour in OBJECT_COLOURS.items()}
            (obj, state), mask = max(counts.items(), key=lambda item: item[1].sum())
            agents = {a: np.all(frame == AGENTS[a][0], axis=-1) for a in AGENTS}
            agent, agent_mask = max(agents.items(), key=lambda item: item[1].sum())
            seen = agent_mask.sum() >= 12
            out["object"].append(OBJECT_CLASSES.index(obj))
            out["changed"].append(int(state not in ("intact", "standing", "full")))
            out["agent"].append(AGENT_CLASSES.index(agent) if seen else 0)
            out["room"].append(ROOM_CLASSES.index(room))
            out["agent_x"].append((np.nonzero(agent_mask)[1].mean() + 0.5) / 64 if seen else 0.5)
            out["object_x"].append((np.nonzero(mask)[1].mean() + 0.5) / 64)
        return {k: np.array(v) for k, v in out.items()}


def cases(n, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        script = sample_script(rng, 17, object_bands=HELD_OUT_OBJECT_BANDS)
        yield i, script, [1, 17, script.contact + 1][i % 3]


def suite(reader, n):
    scores = {kind: [] for kind in KINDS}
    for i, script, position in cases(n):
        image = script.render(position - 1, 64)
        for kind in KINDS:
            video = degenerate(kind, script, position, seed=i)
            verdict = judge_video(reader, video, image, script, position, script.agent)
            scores[kind].append((verdict.causal_order, verdict.text_adherence, verdict.continuity, verdict.why))
    return {kind: (np.mean([s[0] for s in v]), np.mean([s[1] for s in v]), v) for kind, v in scores.items()}


def check(result):
    assert result["truth"][0] >= 0.9 and result["truth"][1] >= 0.9, result["truth"][2]
    for kind in KINDS[1:]:
        assert result[kind][0] <= 0.15, (kind, result[kind][2])
    assert result["wrong_agent"][1] <= 0.15


def test_the_rules_pass_true_clips_and_fail_every_degenerate_video():
    check(suite(PaletteReader(), 45))


def test_the_shipped_judge_passes_true_clips_and_fails_every_degenerate_video(shipped_judge):
    check(suite(shipped_judge, 45))


def test_one_misread_frame_is_smoothed_away_and_a_pasted_frame_does_not_make_a_story():
    assert smooth(np.array([0, 0, 1, 0, 0, 1, 1])).tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert smooth(np.array([2, 0, 2])).tolist() == [2, 2, 2]


def test_text_adherence_counts_the_truths_agent_frames_and_zeroes_another_agent():
    truth = np.array([0, 1, 1, 1, 1, 0])
    read = {"agent": np.array([0, 0, 1, 1, 1, 0])}
    assert text_adherence(read, truth, "cat") == pytest.approx(0.75)
    read = {"agent": np.array([0, 1, 1, 1, 1, 2])}  # a dog walks in at the end
    assert text_adherence(read, truth, "cat") == 0.0


def test_anchor_psnr_counts_only_in_a_continuous_video():
    """A two-shot cut that ends on the pasted image scored 60 dB in v1; now 0 dB. A still image is a continuous
    (if eventless) video, so it keeps its PSNR: the tables show it as a degenerate baseline beside the methods."""
    for i, script, position in cases(9, seed=3):
        image = script.render(position - 1, 64)
        for kind, expected in (("hard_cut", 0.0), ("static", 60.0), ("truth", 60.0)):
            verdict = judge_video(PaletteReader(), degenerate(kind, script, position), image, script, position,
                                  script.agent)
            assert verdict.anchor_psnr == expected and verdict.continuity == (kind != "hard_cut"), (kind, verdict)


class ScriptedReader:
    """Returns a fixed reading: the judge's output for a video, written by hand."""

    def __init__(self, reading):
        self.reading = reading

    def read(self, frames):
        return {k: np.array(v) for k, v in self.reading.items()}


def story_reading(agent_x=None):
    """A cat walks to a vase at 0.5 of the width in the kitchen, knocks it over at frame 9 and walks on."""
    x = agent_x or [0.5] + [0.05 * t for t in range(1, 13)] + [0.5] * 4
    return {"object": [0] * 17, "room": [0] * 17, "changed": [0] * 8 + [1] * 9,
            "agent": [0] + [1] * 12 + [0] * 4, "agent_x": x, "object_x": [0.5] * 17}


def verdict_of(reading):
    script = EventScript("cat", "vase", "kitchen", enter=1, contact=8)
    frames = script.frames(64)
    return judge_video(ScriptedReader(reading), frames, frames[16], script, 17, "cat")


def test_a_story_told_in_order_fails_causal_order_when_the_video_is_not_continuous():
    assert verdict_of(story_reading()).causal_order
    teleport = [0.5] + [0.05 * t for t in range(1, 13)] + [0.5] * 4
    teleport[3] = 0.75  # the agent jumps half the frame and back: no agent in the world moves that fast
    verdict = verdict_of(story_reading(teleport))
    assert not verdict.continuity and not verdict.causal_order and "jumps" in verdict.why


def test_an_agent_misread_for_two_frames_keeps_its_tracks_identity():
    reading = story_reading()
    reading["agent"][5:7] = [2, 2]  # two frames read as a dog inside the cat's walk: one agent, one identity
    verdict = verdict_of(reading)
    assert verdict.causal_order and verdict.text_adherence > 0.8, verdict
