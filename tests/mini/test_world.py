import numpy as np
import pytest

from reasondiff.mini import AGENTS, OBJECTS, EventScript, sample_script
from reasondiff.mini.world import AGENTS as AGENT_TABLE
from reasondiff.mini.world import OBJECT_COLOURS


def test_the_same_seed_gives_the_same_clips():
    a = [sample_script(np.random.default_rng(5)) for _ in range(3)]
    b = [sample_script(np.random.default_rng(5)) for _ in range(3)]
    assert a == b
    assert np.array_equal(a[0].frames(), b[0].frames())
    other = sample_script(np.random.default_rng(6))
    assert other != a[0] or not np.array_equal(other.frames(), a[0].frames())


def colour_pixels(frame, colour):
    return int(np.all(frame == np.array(colour, dtype=np.uint8), axis=-1).sum())


@pytest.mark.parametrize("seed", range(8))
def test_captions_and_pixels_follow_the_ground_truth(seed):
    script = sample_script(np.random.default_rng(seed))
    intact, changed, _ = OBJECTS[script.object]
    frames = script.frames()
    for t, frame in enumerate(frames):
        state, caption = script.state(t), script.caption(t)
        expected_state = changed if t >= script.contact else intact
        assert state.object_state == expected_state
        assert colour_pixels(frame, OBJECT_COLOURS[(script.object, expected_state)]) > 0
        other = intact if expected_state == changed else changed
        assert colour_pixels(frame, OBJECT_COLOURS[(script.object, other)]) == 0
        agent_pixels = colour_pixels(frame, AGENT_TABLE[script.agent][0])
        assert (agent_pixels > 0) == (state.agent_x is not None and -0.2 < state.agent_x < 0.98), (t, state)
        assert script.object in caption
        if state.phase in ("approach", "contact", "after"):
            assert script.agent in caption
        if t < script.contact:
            assert changed not in caption
        elif state.phase != "contact":
            assert changed in caption


def test_cause_comes_before_effect_in_every_script():
    rng = np.random.default_rng(0)
    for _ in range(200):
        s = sample_script(rng)
        phases = [s.state(t).phase for t in range(s.num_frames)]
        order = list(dict.fromkeys(phases))  # phases in the order they first appear
        assert order[:3] == ["before", "approach", "contact"] and phases.count("contact") == 1
        assert set(order[3:]) <= {"after", "gone"}
        assert all(s.state(t).object_state == OBJECTS[s.object][0] for t in range(s.contact))


def test_pairs_restrict_combinations():
    rng = np.random.default_rng(0)
    pairs = {("cat", "vase"), ("dog", "glass")}
    seen = {(s.agent, s.object) for s in (sample_script(rng, pairs=pairs) for _ in range(50))}
    assert seen == pairs
    with pytest.raises(ValueError, match="no"):
        sample_script(rng, agents=["cat"], pairs={("dog", "vase")})


def test_bad_scripts_are_rejected():
    with pytest.raises(ValueError, match="contact"):
        EventScript("cat", "vase", "kitchen", enter=9, contact=8)
    with pytest.raises(ValueError, match="unknown agent"):
        EventScript("horse", "vase", "kitchen")


def test_every_agent_and_object_renders():
    for agent in AGENTS:
        for obj in OBJECTS:
            frames = EventScript(agent, obj, "garden").frames(size=32)
            assert frames.shape == (17, 32, 32, 3) and frames.dtype == np.uint8
