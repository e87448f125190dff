import json
import math

import pytest
import thinkdiff_toy as toy
import torch

from reasondiff.thinkdiff import Aligner, TokenFeatures, TrainConfig, clip_image_tokens, thinkdiff_loss, tiny, train
from reasondiff.thinkdiff.training import Batch, batch_indices, collate_lvlm, latest_checkpoint

STEPS = 100


def mean(xs):
    return sum(xs) / len(xs)


@pytest.fixture(scope="module")
def lvlm_corpus(toy_captions):
    return toy.toy_lvlm_features(toy_captions, seed=0)


@pytest.fixture(scope="module")
def clip_corpus(toy_captions):
    torch.set_num_threads(1)
    images = [toy.toy_image(c) for c in toy_captions]
    tokens = clip_image_tokens(tiny.clip_vision(0), tiny.clip_image_processor(), images)
    return [TokenFeatures(features=tokens[i], text=c) for i, c in enumerate(toy_captions)]


def aligner_for(t5, init, in_dim=32, seed=0):
    torch.manual_seed(seed)
    aligner = Aligner(in_dim=in_dim, out_dim=tiny.T5_DIM, norm_type="none" if init == "none" else "rms")
    return aligner.init_norm_from(t5) if init == "t5" else aligner


def run(variant, init, t5, corpus, tmp_path, **overrides):
    config = TrainConfig(variant=variant, steps=STEPS, batch_size=16, learning_rate=3e-3, checkpoint_every=1000,
                         **overrides)
    return train(config, aligner_for(t5, init), t5, tiny.t5_tokenizer(), corpus, tmp_path / f"{variant}-{init}",
                 progress=False).losses


@pytest.mark.parametrize("variant", ["lvlm", "clip"])
def test_loss_falls_and_the_papers_init_beats_default_init_fig7(variant, pretrained_t5, lvlm_corpus, clip_corpus,
                                                                tmp_path, capsys):
    corpus = lvlm_corpus if variant == "lvlm" else clip_corpus
    frozen = {k: v.clone() for k, v in pretrained_t5.state_dict().items()}
    losses = {init: run(variant, init, pretrained_t5, corpus, tmp_path) for init in ("t5", "default", "none")}
    with capsys.disabled():  # the measured curves, for the record (`pytest -s` not needed)
        for init, curve in losses.items():
            print(f"\nFig.7 {variant:4s} {init:7s} mean loss per 10 steps:",
                  [round(mean(curve[i:i + 10]), 3) for i in range(0, STEPS, 10)])
    paper, default = losses["t5"], losses["default"]
    assert len(paper) == STEPS and all(math.isfinite(x) for x in paper)  # one per step
    # the decoder's loss falls clearly with the paper's design
    assert mean(paper[-20:]) < 0.8 * mean(paper[:10]), (mean(paper[:10]), mean(paper[-20:]))
    # Fig. 7: the encoder-initialised RMSNorm starts near the decoder's scale and stays ahead of the default init
    assert mean(paper[:10]) < 0.6 * mean(default[:10])
    assert mean(paper) < mean(default)
    # only the aligner trained: the T5 is bit-for-bit what it was
    assert all(torch.equal(v, pretrained_t5.state_dict()[k]) for k, v in frozen.items())


def test_aligned_tokens_enter_the_decoder_exactly_as_encoder_outputs(pretrained_t5):
    """If the aligner reproduced the T5 encoder's outputs, the loss would be T5's own seq2seq loss."""
    tok = tiny.t5_tokenizer()
    src = tok(["a red square on a"], return_tensors="pt")
    tgt = tok(["blue background"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        enc = pretrained_t5.get_encoder()(**src).last_hidden_state
        reference = pretrained_t5(**src, labels=tgt).loss

    class Replay(torch.nn.Module):  # an "aligner" that outputs the encoder's states
        def forward(self, x):
            return enc

    batch = Batch(features=torch.zeros(1, enc.shape[1], 3), feature_mask=src["attention_mask"], labels=tgt)
    torch.testing.assert_close(thinkdiff_loss(pretrained_t5, Replay(), batch), reference)
    # Eq. 4: image tokens, then the encoded caption prefix; with an all-masked image part only the text counts
    batch = Batch(features=torch.zeros(1, 2, 3), feature_mask=torch.zeros(1, 2, dtype=torch.long), labels=tgt,
                  prefix_ids=src["input_ids"], prefix_mask=src["attention_mask"])

    class Junk(torch.nn.Module):
        def forward(self, x):
            return torch.randn(*x.shape[:2], tiny.T5_DIM) * 100

    torch.testing.assert_close(thinkdiff_loss(pretrained_t5, Junk(), batch), reference)


def test_exact_resume_and_atomic_checkpoints(pretrained_t5, lvlm_corpus, tmp_path):
    tok = tiny.t5_tokenizer()
    config = TrainConfig(variant="lvlm", steps=6, batch_size=4, learning_rate=3e-3, checkpoint_every=2, keep_last=2)
    straight = train(config, aligner_for(pretrained_t5, "t5"), pretrained_t5, tok, lvlm_corpus[:40],
                     tmp_path / "a", progress=False)
    # the same run, killed after 3 steps (after the step-2 checkpoint), then restarted with a fresh,
    # differently initialised aligner: everything it continues from must come from the checkpoint
    part = train(config, aligner_for(pretrained_t5, "t5"), pretrained_t5, tok, lvlm_corpus[:40],
                 tmp_path / "b", progress=False, stop_after=3)
    assert part.step == 3 and latest_checkpoint(tmp_path / "b").name == "step-000000002"
    assert not (tmp_path / "b" / "aligner").exists()
    resumed = train(config, aligner_for(pretrained_t5, "default", seed=7), pretrained_t5, tok, lvlm_corpus[:40],
                    tmp_path / "b", progress=False)
    assert resumed.step == 6 and resumed.losses == straight.losses
    a, b = Aligner.from_pretrained(straight.aligner_dir), Aligner.from_pretrained(resumed.aligner_dir)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    ckpts = sorted(p.name for p in (tmp_path / "b" / "checkpoints").iterdir())
    assert ckpts == ["step-000000004", "step-000000006"]  # renamed into place, older ones pruned, no temp dirs
    state = json.loads((tmp_path / "b" / "checkpoints" / "step-000000006" / "trainer_state.json").read_text())
    assert state["step"] == 6 and len(state["losses"]) == 6
    assert json.loads((tmp_path / "b" / "losses.json").read_text()) == resumed.losses


def test_batches_cover_each_epoch_once_and_depend_only_on_the_step():
    n, bs = 10, 4
    order = [i for step in range(5) for i in batch_indices(n, bs, step, seed=3)]
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:20]) == list(range(10))
    assert batch_indices(n, bs, 3, seed=3) == batch_indices(n, bs, 3, seed=3) != batch_indices(n, bs, 3, seed=4)


def test_masked_training_changes_what_is_predicted(lvlm_corpus):
    tok = tiny.t5_tokenizer()
    masked = collate_lvlm(lvlm_corpus[:8], tok, torch.Generator().manual_seed(0))
    full = collate_lvlm(lvlm_corpus[:8], tok, torch.Generator().manual_seed(0), masked=False)
    assert (masked.feature_mask.sum(1) < full.feature_mask.sum(1)).all()
    assert all(len(m.split()) < len(f.split()) for m, f in zip(masked.targets, full.targets, strict=True))


def test_encoder_distance_is_zero_on_the_encoders_own_states_and_the_weight_pulls_tokens_there(
        pretrained_t5, lvlm_corpus, clip_corpus, tmp_path):
    """`encoder_weight` (not in the paper) draws aligned tokens to the T5 encoder's states of the same text,
    where a diffusion decoder trained on that encoder can read them; the decoder's own loss still falls."""
    from reasondiff.thinkdiff.training import encoder_distance

    tokenizer = tiny.t5_tokenizer()
    texts = [s.text for s in lvlm_corpus[:8]]
    ids = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = pretrained_t5.get_encoder()(**ids).last_hidden_state
    assert encoder_distance(pretrained_t5, tokenizer, states, ids.attention_mask, texts).item() < 1e-10
    shifted = encoder_distance(pretrained_t5, tokenizer, states + 0.5, ids.attention_mask, texts).item()
    assert shifted == pytest.approx(0.25, rel=1e-4)  # (0.5)^2 on every real token, padding not counted

    batch = collate_lvlm(lvlm_corpus[:32], tokenizer, torch.Generator().manual_seed(0), masked=False)
    distances, losses = {}, {}
    for weight in (0.0, 10.0):  # the toy encoder's states are small (norm scale 0.1): a larger weight
        config = TrainConfig(variant="lvlm", steps=STEPS, batch_size=16, learning_rate=3e-3, checkpoint_every=1000,
                             masked=False, encoder_weight=weight)
        aligner = aligner_for(pretrained_t5, "t5")
        losses[weight] = train(config, aligner, pretrained_t5, tokenizer, lvlm_corpus, tmp_path / str(weight),
                               progress=False).losses
        with torch.no_grad():
            distances[weight] = encoder_distance(pretrained_t5, tokenizer, aligner(batch.features),
                                                 batch.feature_mask, batch.inputs).item()
    assert distances[10.0] < 0.5 * distances[0.0], distances  # measured: 0.0083 against 0.0222
    assert mean(losses[10.0][-20:]) < 0.8 * mean(losses[10.0][:10])
    with pytest.raises(ValueError, match="lvlm only"):
        train(TrainConfig(variant="clip", steps=1, batch_size=2, encoder_weight=1.0), aligner_for(pretrained_t5, "t5"),
              pretrained_t5, tokenizer, clip_corpus, tmp_path / "clip", progress=False)
