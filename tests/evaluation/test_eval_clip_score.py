import math

import numpy as np
import pytest
import torch
from PIL import Image

from reasondiff import Narration
from reasondiff.evaluation.clip_score import CLIPScore, mean_cosine_to, mean_paired_cosine
from reasondiff.evaluation.frame_format import resample_indices


def test_mean_paired_cosine_on_hand_made_features():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    b = torch.tensor([[2.0, 0.0], [1.0, 0.0], [-1.0, -1.0]])  # cosines 1, 0, -1
    assert mean_paired_cosine(a, b) == pytest.approx(0.0)
    assert mean_paired_cosine(a[:1], b[:1]) == pytest.approx(1.0)
    # against one reference: cos((1,0),(1,1)) = cos((0,2),(1,1)) = 1/sqrt2, cos((3,3),(1,1)) = 1
    assert mean_cosine_to(a, torch.tensor([1.0, 1.0])) == pytest.approx((2 / math.sqrt(2) + 1) / 3)
    with pytest.raises(ValueError, match="same shape"):
        mean_paired_cosine(a, b[:2])


def test_captions_are_matched_to_frames_by_nearest_time():
    assert resample_indices(4, 4) == [0, 1, 2, 3]
    assert resample_indices(4, 7) == [0, 0, 1, 2, 2, 2, 3]  # round(k/2), Python's (banker's) rounding
    # the same frames a resampled ground-truth narration uses, so CLIP Text compares what the model was told
    story = Narration(position=1, descriptions=["a", "b", "c", "d"])
    assert story.resample(7).descriptions == [story.descriptions[i] for i in resample_indices(4, 7)]
    assert resample_indices(16, 5) == [0, 4, 8, 11, 15]
    assert resample_indices(1, 3) == [0, 0, 0]


def test_clip_image_of_repeated_condition_image_beats_noise(clip_scorer):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    repeated = np.stack([np.asarray(image)] * 5)
    noise = rng.integers(0, 256, (5, 48, 48, 3), dtype=np.uint8)
    same, other = clip_scorer.image_score(repeated, image), clip_scorer.image_score(noise, image)
    assert same == pytest.approx(1.0, abs=1e-5)
    assert -1.0 <= other < same - 1e-3
    # float frames in [0, 1] score exactly like their uint8 version
    assert clip_scorer.image_score(repeated.astype(np.float32) / 255, image) == pytest.approx(same, abs=1e-6)


def test_clip_text_pairs_each_frame_with_its_own_caption(clip_scorer):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)
    captions = ["an intact vase", "a cat enters", "the cat knocks the vase", "broken vase on the floor"]
    image_features = clip_scorer.image_features(frames)
    text_features = clip_scorer.text_features(captions)
    by_hand = np.mean([torch.nn.functional.cosine_similarity(image_features[i], text_features[i], dim=0).item()
                       for i in range(4)])
    score = clip_scorer.text_score(frames, captions)
    assert score == pytest.approx(by_hand, abs=1e-6)
    assert -1.0 <= score <= 1.0 and math.isfinite(score)
    # reversed captions give a different pairing, hence a different score: the order matters
    assert clip_scorer.text_score(frames, captions[::-1]) != pytest.approx(score, abs=1e-6)
    # 2 captions over 4 frames: frames 0,1 -> caption 0 and frames 2,3 -> caption 1 (nearest in time)
    two = clip_scorer.text_score(frames, captions[:2])
    pairs = clip_scorer.text_features([captions[0], captions[0], captions[1], captions[1]])
    expected = torch.nn.functional.cosine_similarity(image_features, pairs, dim=-1).mean().item()
    assert two == pytest.approx(expected, abs=1e-6)


def test_long_captions_are_truncated_to_clips_77_tokens(clip_scorer):
    tokens = clip_scorer.processor.tokenizer(["word " * 200], truncation=True, max_length=clip_scorer.max_length)
    assert len(tokens.input_ids[0]) == 77
    assert math.isfinite(clip_scorer.text_score(np.zeros((3, 32, 32, 3), np.uint8), ["qwerty " * 200]))


def test_errors_name_the_problem(clip_scorer):
    frames = np.zeros((3, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="ground-truth captions"):
        clip_scorer.text_score(frames, [])
    with pytest.raises(ValueError, match="non-empty"):
        clip_scorer.text_score(frames, ["a cat", " "])
    with pytest.raises(ValueError, match=r"\[F, H, W, 3\]"):
        clip_scorer.image_score(np.zeros((32, 32, 3), np.uint8), Image.new("RGB", (8, 8)))


def test_from_pretrained_round_trip(tmp_path, clip_scorer):
    clip_scorer.model.save_pretrained(tmp_path)
    clip_scorer.processor.save_pretrained(tmp_path)
    loaded = CLIPScore.from_pretrained(str(tmp_path))
    frames = np.random.default_rng(2).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    image = Image.fromarray(frames[0])
    assert loaded.image_score(frames, image) == pytest.approx(clip_scorer.image_score(frames, image), abs=1e-6)
    assert loaded.text_score(frames, ["a cat plays"]) == pytest.approx(clip_scorer.text_score(frames, ["a cat plays"]),
                                                                       abs=1e-6)
