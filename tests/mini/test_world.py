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


def test_benchmarks_follow_the_unpaired_protocol(tmp_path):
    import json

    from PIL import Image

    from reasondiff.mini.bench import build_synthworld
    from reasondiff.mini.narrator import narrate_world
    from reasondiff.mini.splits import TRAIN_PAIRS, training_clips

    build_synthworld(tmp_path / "t", "unpaired", 60, seed=0, train_clips=20, log=lambda m: None)
    rows = [json.loads(line) for line in (tmp_path / "t" / "benchmark.jsonl").open()]
    ends = [r["image_end"] for r in rows]
    assert {e: ends.count(e) for e in set(ends)}.keys() == {"first", "last", "middle"}
    placed = 0
    for row in rows:  # held-out scenes: the object stands where no training clip puts it
        assert (row["agent"], row["object"]) in TRAIN_PAIRS
        assert row["prompt"] == f"a {row['agent']} plays in the {row['room']}" and len(row["captions"]) == 17
        image = Image.open(tmp_path / "t" / row["image"])
        narration = narrate_world(image, row["prompt"], 17)
        # the narrator's script shows, at its position, the same moment of the story as the truth
        said = narration.descriptions[narration.position - 1]
        truth = row["captions"][row["position"] - 1]
        placed += said == truth and (row["image_end"] == "middle" or narration.position == row["position"])
    assert placed / len(rows) >= 0.95, placed
    assert all((c.captions[0].split()[-1] in ("kitchen", "room", "garden")) for c in training_clips(5))


def test_vae_training_resumes_exactly(tmp_path):
    import torch

    from reasondiff.mini.vae import train_vae

    settings = dict(frames_per_step=5, windows=(5, 9), checkpoint_every=1, log=lambda m: None)
    straight = train_vae(tmp_path / "a", steps=3, **settings)
    train_vae(tmp_path / "b", steps=2, **settings)
    resumed = train_vae(tmp_path / "b", steps=3, **settings)
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert (tmp_path / "a" / "checkpoint" / "vae" / "diffusion_pytorch_model.safetensors").is_file()
