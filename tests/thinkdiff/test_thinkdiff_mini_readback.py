"""ThinkDiff-mini's read-back (mini/thinkdiff/alignment.py): an aligner trained with random masked training is
read as it was trained, a prefix of the answer's tokens in and the rest of the text out."""

import torch

from reasondiff.mini.thinkdiff import alignment
from reasondiff.thinkdiff.features import TokenFeatures

TEXT = "a cat by the broken vase in the kitchen"


def _features(text: str = TEXT) -> TokenFeatures:
    """One token per word (" cat", " by", ...), offsets as `lvlm_features` writes them."""
    words = text.split(" ")
    offsets = [0]
    for i, w in enumerate(words):
        offsets.append(offsets[-1] + len(w) + (1 if i else 0))
    return TokenFeatures(features=torch.randn(len(words), 8), text=text, token_ids=torch.arange(len(words)),
                         offsets=torch.tensor(offsets))


def test_a_continuation_is_joined_to_its_prefix_as_masked_training_split_it():
    feats = _features()
    for k in range(1, len(feats.features)):
        cut = int(feats.offsets[k])
        target = feats.text[cut:].strip()  # training.collate_lvlm's target for this split
        assert alignment.completed(feats.text, cut, target) == TEXT
    assert alignment.completed("a cat", 1, "") == "a"  # nothing written: no space added


def test_a_decoder_that_continues_perfectly_reads_back_right_continued_and_wrong_in_full(monkeypatch):
    """What a perfectly trained masked aligner gives: from all n tokens nothing is left to write (`right` 0), from
    every prefix exactly the rest (`continued_right` 1). The no-mask case is the converse."""
    feats = _features()
    monkeypatch.setattr(alignment, "lvlm_features", lambda *a, **k: feats)
    monkeypatch.setattr(alignment, "decode_tokens", lambda t5, tok, tokens: "")
    monkeypatch.setattr(alignment, "decode_prefixes", lambda t5, tok, tokens: [
        feats.text[int(feats.offsets[k]):].strip() for k in range(1, tokens.shape[0])])
    reading = alignment.read_one(None, None, torch.nn.Identity(), None, None, [])
    assert reading.vlm == TEXT and reading.full == "" and len(reading.continued) == len(feats.features) - 1
    scores = alignment._scores([reading], lambda i, text: text == TEXT)
    assert scores["right"] == 0.0 and scores["continued_right"] == 1.0 and scores["first_token_right"] == 1.0
    assert scores["continued_same_as_vlm"] == 1.0

    monkeypatch.setattr(alignment, "decode_tokens", lambda t5, tok, tokens: TEXT)  # no mask: the whole text back
    monkeypatch.setattr(alignment, "decode_prefixes", lambda t5, tok, tokens: [TEXT] * (tokens.shape[0] - 1))
    scores = alignment._scores([alignment.read_one(None, None, torch.nn.Identity(), None, None, [])],
                               lambda i, text: text == TEXT)
    assert scores["right"] == 1.0 and scores["continued_right"] == 0.0


def test_input_token_features_have_no_continuation(monkeypatch):
    feats = TokenFeatures(features=torch.randn(5, 8), text=TEXT)
    monkeypatch.setattr(alignment, "lvlm_features", lambda *a, **k: feats)
    monkeypatch.setattr(alignment, "decode_tokens", lambda t5, tok, tokens: TEXT)
    reading = alignment.read_one(None, None, torch.nn.Identity(), None, None, [])
    assert reading.continued == []
    assert set(alignment._scores([reading], lambda i, text: text == TEXT)) == {"same_as_vlm", "right"}


def test_prefixes_decode_as_if_each_were_alone():
    """decode_prefixes pads every prefix to n in one batch; the padding must not reach the decoder."""
    from transformers import AutoTokenizer

    from reasondiff.mini.pretrained import shipped_path
    from reasondiff.mini.thinkdiff import t5 as mini_t5

    t5 = mini_t5.build().eval()
    tokenizer = AutoTokenizer.from_pretrained(shipped_path() / "tokenizer")
    tokens = t5.get_encoder()(**tokenizer([TEXT], return_tensors="pt")).last_hidden_state[0]
    batched = alignment.decode_prefixes(t5, tokenizer, tokens, max_new_tokens=6)
    alone = [alignment.decode_tokens(t5, tokenizer, tokens[None, :k], max_new_tokens=6)
             for k in range(1, tokens.shape[0])]
    assert batched == alone and len(batched) == tokens.shape[0] - 1
