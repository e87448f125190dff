"""ThinkDiff-mini's trainers at micro scale: the mini VLM, the text-to-image decoder, the aligner's data."""

import json

import numpy as np
import PIL.Image
import pytest
import torch

from reasondiff.mini.thinkdiff import alignment, decoder_training, vlm
from reasondiff.mini.thinkdiff.bench import mentioned, right
from reasondiff.mini.thinkdiff.decoder import TINY
from reasondiff.mini.thinkdiff.stills import ATTRIBUTES, SPACES
from reasondiff.mini.thinkdiff.tasks import TABLE
from reasondiff.thinkdiff.features import DESCRIBE_PROMPTS, chat_messages


@pytest.fixture(scope="module")
def proc():
    return vlm.processor()


def test_world_words_are_single_tokens_and_text_round_trips(proc):
    tok = proc.tokenizer
    for word in [w for space in SPACES.values() for w in space if " " not in w]:
        assert len(tok.tokenize(f" {word}")) == 1, word
    text = "a cat by the broken vase in the living room"
    assert tok.decode(tok(text).input_ids) == text and len(tok(text).input_ids) <= 11


def test_a_batch_is_the_inference_prompt_with_the_loss_on_the_answer_only(proc):
    items, answer = vlm.episode(np.random.default_rng(3))
    batch = vlm.encode(proc, [(items, answer), vlm.captioning(np.random.default_rng(4))])
    messages, images = chat_messages(items)
    prompt = proc(text=[proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)],
                  images=images, return_tensors="pt")
    n = prompt.input_ids.shape[1]
    assert torch.equal(batch["input_ids"][0, :n], prompt.input_ids[0])  # what lvlm_features feeds at inference
    taught = batch["labels"][0][batch["labels"][0] != -100]
    assert proc.tokenizer.decode(taught) == answer + "<|im_end|>"
    assert (batch["labels"][0, :n] == -100).all() and batch["pixel_values"].shape[0] == (len(images) + 1) * 64


def test_episodes_are_answered_by_the_target_description_on_training_scenes(monkeypatch):
    held_out = []
    original = vlm.random_still

    def spy(rng, fixed=None, held_out_flag=True, **kw):
        held_out.append(kw.get("held_out", held_out_flag))
        return original(rng, fixed, **kw)

    monkeypatch.setattr(vlm, "random_still", spy)
    rng = np.random.default_rng(0)
    tasks, shots = set(), set()
    for _ in range(60):
        items, answer = vlm.episode(rng)
        texts = [i for i in items if isinstance(i, str)]
        shot = sum(isinstance(i, PIL.Image.Image) for i in items)
        task = next(t for t in TABLE.tasks.values() if texts[-2].removesuffix(": ") in t.x_list)
        tasks.add(texts[-2]), shots.add(shot)
        said = mentioned(answer)
        assert texts[-1] == vlm.INSTRUCTION and len(texts) == shot + 2
        assert said[task.x_space] == texts[-2].removesuffix(": ") or texts[-2] in ("intact: ", "changed: ")
    assert shots == {1, 2, 4} and held_out and not any(held_out)  # training scenes only
    items, answer = vlm.captioning(np.random.default_rng(1))
    assert items[1] in DESCRIBE_PROMPTS and all(mentioned(answer)[k] for k in ATTRIBUTES)


def test_vlm_training_lowers_the_loss_and_resumes_exactly(tmp_path):
    quiet = dict(batch_size=4, checkpoint_every=2, eval_cases=0, vision_steps=2, log=lambda _: None)
    vlm.train(tmp_path / "a", steps=4, **quiet)
    vlm.train(tmp_path / "b", steps=2, **quiet)  # "killed" after 2 steps
    vlm.train(tmp_path / "b", steps=4, **quiet)
    a = json.loads((tmp_path / "a" / "checkpoint" / "state.json").read_text())["losses"]
    b = json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())["losses"]
    assert len(a) == 4 and a == b
    model, proc = vlm.load(tmp_path / "b" / "vlm")
    longer = vlm.train(tmp_path / "c", steps=30, batch_size=8, checkpoint_every=30, eval_cases=0, vision_steps=0,
                       log=lambda _: None)
    losses = json.loads((tmp_path / "c" / "checkpoint" / "state.json").read_text())["losses"]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 1.0 and longer["steps"] == 30
    assert isinstance(vlm.answer(model, proc, [PIL.Image.new("RGB", (64, 64)), "which room is it?"], 3), str)


def test_decoder_captions_drop_attributes_and_a_tenth_are_empty():
    rng = np.random.default_rng(0)
    attrs = {"agent": "cat", "object": "vase", "room": "kitchen", "state": "changed"}
    caps = [decoder_training.drop_attributes(rng, attrs) for _ in range(2000)]
    assert 0.08 < np.mean([c == "" for c in caps]) < 0.16  # 10 % + the rare draw that kept nothing
    assert "a cat by the broken vase in the kitchen" in caps and "a cat in the kitchen" in caps
    assert "the broken vase" in caps and not any("broken" in c and "vase" not in c for c in caps)


def test_decoder_training_lowers_the_loss_and_resumes_exactly(tmp_path):
    quiet = dict(batch_size=4, pool_size=16, checkpoint_every=2, config=TINY, log=lambda _: None)
    decoder_training.train(tmp_path / "a", steps=4, **quiet)
    decoder_training.train(tmp_path / "b", steps=2, **quiet)
    decoder_training.train(tmp_path / "b", steps=4, **quiet)
    a = json.loads((tmp_path / "a" / "checkpoint" / "state.json").read_text())["losses"]
    b = json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())["losses"]
    assert len(a) == 4 and a == b
    pool = decoder_training.latent_pool(None, 16, 0, tmp_path / "b" / "pool.safetensors")  # cached: no VAE needed
    assert pool[0].shape == (16, 16, 1, 16, 16) and len(pool[1]) == 16
    decoder_training.train(tmp_path / "c", steps=80, learning_rate=2e-3, **{**quiet, "checkpoint_every": 80})
    losses = json.loads((tmp_path / "c" / "checkpoint" / "state.json").read_text())["losses"]
    assert np.mean(losses[-15:]) < 0.8 * np.mean(losses[:15])

    from reasondiff.mini.thinkdiff.decoder import MiniDecoder

    image = MiniDecoder.from_pretrained(tmp_path / "c" / "decoder", steps=2).text("a cat in the kitchen", 0)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8


def test_decoder_cooldown_extends_a_finished_constant_rate_run_exactly(tmp_path):
    """The shipped decoder was resumed from a finished 9 000-step constant-rate run with more steps and a
    cool-down: the schedule must make that the same as one run with the cool-down from the start."""
    from safetensors.torch import load_file

    rates = [decoder_training.learning_rate_at(s, 12, 1e-3, 4) for s in (0, 7, 8, 9, 11)]
    np.testing.assert_allclose(rates, [1e-3, 1e-3, 1e-3, 7.5e-4, 2.5e-4])
    quiet = dict(batch_size=4, pool_size=16, checkpoint_every=2, config=TINY, log=lambda _: None, learning_rate=2e-3)
    decoder_training.train(tmp_path / "one", steps=6, cooldown=3, **quiet)
    decoder_training.train(tmp_path / "two", steps=3, **quiet)
    decoder_training.train(tmp_path / "two", steps=6, cooldown=3, **quiet)
    decoder_training.train(tmp_path / "flat", steps=6, **quiet)
    weights = {run: load_file(tmp_path / run / "decoder" / "transformer" / "diffusion_pytorch_model.safetensors")
               for run in ("one", "two", "flat")}
    for name, value in weights["one"].items():
        torch.testing.assert_close(weights["two"][name], value, rtol=0, atol=0)
    assert max((weights["flat"][k] - v).abs().max().item() for k, v in weights["one"].items()) > 1e-4


def test_caption_data_are_training_scenes_with_their_captions(tmp_path):
    from reasondiff.mini.palette import parse_frame

    path = alignment.caption_data(tmp_path, 6)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 6 and alignment.caption_data(tmp_path, 6).read_text() == path.read_text()
    for row in rows:
        read = parse_frame(np.asarray(PIL.Image.open(tmp_path / row["image"]).convert("RGB")))
        said = mentioned(row["caption"])
        assert (read.agent, read.object, read.room) == (said["agent"], said["object"], said["room"])


def test_the_aligner_chain_runs_on_a_mini_vlm_folder(tmp_path):
    """Step 3 of scripts/train_thinkdiff_mini.sh at micro scale: captioning data -> `thinkdiff extract` from a mini
    VLM folder -> `thinkdiff train` against a UMT5 decoder folder -> read-back."""
    from typer.testing import CliRunner

    from reasondiff.mini.thinkdiff import t5 as mini_t5
    from reasondiff.thinkdiff import FeatureDataset
    from reasondiff.thinkdiff.cli import app

    proc = vlm.processor()
    vlm.save(vlm.build(proc, width=32, layers=1), proc, tmp_path / "vlm")
    t5 = mini_t5.build()
    t5.save_pretrained(tmp_path / "t5")
    from transformers import AutoTokenizer

    from reasondiff.mini.pretrained import shipped_path

    AutoTokenizer.from_pretrained(shipped_path() / "tokenizer").save_pretrained(tmp_path / "t5")
    data = alignment.caption_data(tmp_path / "captions", 4)
    runner = CliRunner()
    for args in (["extract", "--data", data, "--out", tmp_path / "f", "--vlm", tmp_path / "vlm", "--greedy",
                  "--max-new-tokens", 4, "--dtype", "float32"],
                 ["train", "--features", tmp_path / "f", "--out", tmp_path / "a", "--t5", tmp_path / "t5", "--steps", 2,
                  "--batch-size", 2, "--lr-warmup-steps", 0]):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output + repr(result.exception)
    features = FeatureDataset(tmp_path / "f")
    assert len(features) == 4 and features[0].features.shape == (4, 32) and features[0].token_aligned
    model, proc = vlm.load(tmp_path / "vlm")
    from reasondiff.thinkdiff.aligner import Aligner

    result = alignment.read_back(model, proc, Aligner.from_pretrained(tmp_path / "a" / "aligner"), t5,
                                 AutoTokenizer.from_pretrained(tmp_path / "t5"), cases=1, shots=(1,))
    assert set(result) == {"captions", "episodes_1shot"} and 0 <= result["episodes_1shot"]["right"] <= 1
    assert len(result["captions"]["examples"]) == 3


def test_an_episode_answer_names_the_query_the_shared_attributes_and_always_the_target():
    from reasondiff.mini.thinkdiff.tasks import episodes, target

    prompt = episodes(TABLE.order[0], 2, 1, 0)[0]  # Room-I: texts name rooms, the agent is latent
    theta = prompt.theta
    demos = [{"agent": theta, "object": "vase", "room": "garden", "state": "changed"},
             {"agent": theta, "object": "glass", "room": "kitchen", "state": "changed"}]
    answer = vlm.answer_attributes(prompt, demos)
    assert answer == {"agent": theta, "state": "changed", "room": prompt.x_values[-1]}  # objects differ: left out
    assert target(prompt).items() <= answer.items()
    one = vlm.answer_attributes(episodes(TABLE.order[0], 1, 1, 0)[0], demos[:1])  # one demo: all of it is shared
    assert set(one) == set(ATTRIBUTES)


def test_the_vision_tower_learns_the_four_attributes_from_its_probes(proc):
    model = vlm.build(proc)
    before = [p.detach().clone() for p in model.model.language_model.parameters()]
    accuracy = vlm.pretrain_vision(model, proc, steps=120, batch_size=16)
    assert accuracy > 0.5  # all four attributes of held-out stills right; chance is 1/96
    assert all(torch.equal(a, b) for a, b in zip(before, model.model.language_model.parameters(), strict=True))
