"""Judge v2: labels read off the pixels, training that resumes exactly, and the shipped judge reading frames
decoded by the mini VAE (what it scores in practice)."""

import json

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan

from reasondiff.mini.judge import AGENT_CLASSES, IGNORE, SceneJudge, degrade, frame_labels, judge_loss, stack_labels, state_labels
from reasondiff.mini.judge_data import build_bank, decode_through, read_bank
from reasondiff.mini.judge_training import accuracy, train_judge
from reasondiff.mini.pretrained import load_pipeline

TINY_VAE = dict(base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[True],
                latents_mean=[0.0] * 4, latents_std=[1.0] * 4)  # fast, random
from reasondiff.mini.world import HELD_OUT_OBJECT_BANDS, EventScript, sample_script


def test_labels_follow_the_pixels():
    script = EventScript("dog", "window", "garden", enter=2, contact=8)
    first = frame_labels(script, 0, script.render(0))
    assert {k: first[k] for k in ("object", "changed", "agent", "room")} == {"object": 1, "changed": 0, "agent": 0,
                                                                             "room": 2}
    assert np.isnan(first["agent_x"]) and first["object_x"] == pytest.approx(0.5, abs=0.02)
    contact = frame_labels(script, 8, script.render(8))
    assert contact["changed"] == 1 and contact["agent"] == AGENT_CLASSES.index("dog")
    assert abs(contact["agent_x"] - contact["object_x"]) < 0.2  # it touches the window


def test_a_sliver_of_an_agent_is_no_label():
    script = EventScript("ball", "vase", "kitchen", enter=1, contact=10)  # frame 2: the ball's first 4 pixels
    frame = script.render(1)
    visible = np.all(frame == (210, 30, 40), axis=-1).sum()
    assert 0 < visible < 12 and frame_labels(script, 1, frame)["agent"] == IGNORE


def test_degradation_is_seeded_and_visible():
    frame = EventScript("cat", "vase", "kitchen").render(5)
    a, b = degrade(frame, np.random.default_rng(1)), degrade(frame, np.random.default_rng(1))
    assert np.array_equal(a, b) and a.shape == frame.shape and np.abs(a.astype(int) - frame).mean() > 1


def test_loss_skips_unreadable_labels_and_unseen_positions():
    judge = SceneJudge(width=8)
    x = torch.zeros(2, 3, 64, 64)
    rows = [frame_labels(EventScript("cat", "vase", "kitchen"), 0, EventScript("cat", "vase", "kitchen").render(0))] * 2
    target = stack_labels([{**r, "agent": IGNORE} for r in rows])
    loss = judge_loss(judge(x), target)
    assert torch.isfinite(loss) and loss > 0
    read = judge.read(np.zeros((3, 96, 96, 3), np.uint8))  # any size is resized to 64x64
    assert read["agent"].shape == (3,) and read["agent_x"].dtype == np.float32


@pytest.fixture(scope="module")
def tiny_bank(tmp_path_factory):
    torch.manual_seed(0)
    vae = AutoencoderKLWan(**TINY_VAE).eval()
    return build_bank(tmp_path_factory.mktemp("bank"), vae, clips=3, seed=5, chunk=2, log=lambda m: None)


def test_bank_resumes_by_chunk(tiny_bank):
    scripts, decoded, noisy = read_bank(tiny_bank)
    assert len(scripts) == 3 and decoded.shape == noisy.shape == (3, 17, 64, 64, 3)
    assert not np.array_equal(decoded, noisy)  # noise on the latents changes the decoded frames
    (tiny_bank / "chunk-00001.npz").unlink()  # as if killed before the second chunk
    torch.manual_seed(0)
    build_bank(tiny_bank, AutoencoderKLWan(**TINY_VAE).eval(), clips=3, seed=5, chunk=2, log=lambda m: None)
    again = read_bank(tiny_bank)
    assert again[0] == scripts and np.array_equal(again[1], decoded) and np.array_equal(again[2], noisy)


def test_training_resumes_exactly(tiny_bank, tmp_path):
    whole = train_judge(tmp_path / "a", tiny_bank, steps=4, batch_size=6, checkpoint_every=2, log=lambda m: None)

    class Killed(Exception):
        pass

    def kill_after_first_checkpoint(message):
        if message.startswith("checkpoint"):
            raise Killed

    with pytest.raises(Killed):
        train_judge(tmp_path / "b", tiny_bank, steps=4, batch_size=6, checkpoint_every=2, log=kill_after_first_checkpoint)
    state = json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())
    assert state == {"step": 2}
    messages = []
    resumed = train_judge(tmp_path / "b", tiny_bank, steps=4, batch_size=6, checkpoint_every=2, log=messages.append)
    assert any("resuming from step 2" in m for m in messages)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_the_shipped_judge_reads_frames_the_mini_vae_decoded(shipped_judge):
    """Held-out scenes (objects in the benchmark's bands), true clips through the shipped VAE.

    Object, state and room read at >= 0.95. Agents a little less: VAE v2 still blurs a walking agent inside a
    4-frame latent group. On the 1 088-frame held-out bank the judge reads 0.955 of them
    (weights/judge/accuracy.json), on these 102 frames 0.90 (v1 VAE and judge: 0.89 on the bank)."""
    rng = np.random.default_rng(2024)
    scripts = [sample_script(rng, 17, object_bands=HELD_OUT_OBJECT_BANDS) for _ in range(6)]
    decoded, _ = decode_through(load_pipeline().vae, np.stack([s.frames(64) for s in scripts]))
    labels = [frame_labels(s, t, s.render(t)) for s in scripts for t in range(17)]
    scores = accuracy(shipped_judge, decoded.reshape(-1, 64, 64, 3), labels)
    assert min(scores["object"], scores["changed"], scores["room"]) >= 0.95 and scores["agent"] >= 0.85, scores
    assert scores["agent_x_mae"] < 0.05 and scores["object_x_mae"] < 0.02, scores


def test_the_shipped_judge_reads_clips_as_users_hand_them_in(shipped_judge):
    """Judge v3: held-out true clips through H.264 crf 28, JPEG q25, 32 px and back, mirrored. The v2 judge read a
    phantom agent in 17 % of the agent-free JPEG q25 frames (the garden's wall and floor after chroma subsampling),
    which v3's edge rules would call an agent appearing inside the room; v3 reads none, and agents at an edge
    within 0.03 of where they are."""
    from reasondiff.mini.robustness import variant

    rng = np.random.default_rng(3131)
    scripts = [sample_script(rng, 17, rooms=["garden"], object_bands=HELD_OUT_OBJECT_BANDS) for _ in range(6)]
    for name in ("h264_crf28", "jpeg_q25", "down32", "mirrored"):
        frames, labels = [], []
        for script in scripts:
            clean = script.frames(64)
            shown = clean[:, :, ::-1] if name == "mirrored" else clean
            frames.append(variant(name, clean))
            labels += [state_labels(script, script.state(t).object_state, shown[t]) for t in range(17)]
        scores = accuracy(shipped_judge, np.concatenate(frames), labels)
        assert scores["no_phantom"] >= 0.98 and scores["agent"] >= 0.97, (name, scores)
        assert scores["edge_agent_x_mae"] < 0.03, (name, scores)
