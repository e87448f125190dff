import pytest
import thinkdiff_toy as toy
import torch

from reasondiff.thinkdiff import tiny
from reasondiff.thinkdiff.masking import split_caption, split_tokens
from reasondiff.thinkdiff.training import collate_clip, collate_lvlm


def test_a_token_is_never_both_input_and_target():
    g = torch.Generator().manual_seed(0)
    seen = set()
    for n in range(2, 12):
        for _ in range(60):
            split = split_tokens(n, g)
            inputs, targets = set(split.input_positions), set(split.target_positions)
            assert not inputs & targets
            assert inputs | targets == set(range(n))
            assert inputs and targets  # at least one of each
            seen.add((n, split.k))
    assert {k for n, k in seen if n == 8} == set(range(1, 8))  # every split point is drawn
    with pytest.raises(ValueError):
        split_tokens(1, g)


def test_caption_split_is_at_a_word_and_may_leave_an_empty_prefix():
    g = torch.Generator().manual_seed(1)
    caption = "a red square on a blue background"
    prefixes = set()
    for _ in range(200):
        first, rest = split_caption(caption, g)
        assert rest and " ".join(filter(None, [first, rest])) == caption
        prefixes.add(first)
    assert "" in prefixes and len(prefixes) == 7


def test_lvlm_collate_feeds_the_first_part_and_targets_the_rest():
    samples = toy.toy_lvlm_features(toy.toy_captions(6, seed=3))
    tok = tiny.t5_tokenizer()
    batch = collate_lvlm(samples, tok, torch.Generator().manual_seed(0))
    for b, s in enumerate(samples):
        k = int(batch.feature_mask[b].sum())
        assert 1 <= k < len(s.features)
        assert torch.equal(batch.features[b, :k], s.features[:k])  # exactly the first k tokens' features
        assert batch.features[b, k:].abs().sum() == 0
        words = s.text.split()
        assert batch.inputs[b].split() == words[:k] and batch.targets[b].split() == words[k:]
        label_ids = [t for t in batch.labels[b].tolist() if t != -100]
        assert tok.decode(label_ids, skip_special_tokens=True) == " ".join(words[k:])  # re-tokenised for T5
    unmasked = collate_lvlm(samples, tok, torch.Generator().manual_seed(0), masked=False)  # Table 3 ablation
    assert unmasked.targets == [s.text for s in samples]
    assert unmasked.feature_mask.sum(1).tolist() == [len(s.features) for s in samples]


def test_clip_collate_keeps_all_image_tokens_and_splits_the_caption():
    from reasondiff.thinkdiff import TokenFeatures

    caps = toy.toy_captions(5, seed=4)
    samples = [TokenFeatures(features=torch.randn(5, 8), text=c) for c in caps]
    tok = tiny.t5_tokenizer()
    batch = collate_clip(samples, tok, torch.Generator().manual_seed(0))
    assert batch.feature_mask.sum().item() == 25
    for b, c in enumerate(caps):
        assert " ".join(filter(None, [batch.inputs[b], batch.targets[b]])) == c
        prefix = [t for t, m in zip(batch.prefix_ids[b].tolist(), batch.prefix_mask[b].tolist(), strict=True) if m]
        assert tok.decode(prefix, skip_special_tokens=True) == batch.inputs[b]
