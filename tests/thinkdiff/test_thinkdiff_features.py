import json

import numpy as np
import PIL.Image
import pytest
import thinkdiff_toy as toy
import torch

from reasondiff.thinkdiff import FeatureDataset, TokenFeatures, clip_image_tokens, lvlm_features, tiny
from reasondiff.thinkdiff.features import ShardedFeatureWriter, extract_to_shards


@pytest.fixture(scope="module")
def vlm():
    processor = tiny.qwen2vl_processor()
    return tiny.qwen2vl(0, processor), processor


def picture(seed=0, size=56):
    rng = np.random.default_rng(seed)
    return PIL.Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


def test_features_come_from_the_generated_tokens_after_the_final_norm(vlm):
    model, processor = vlm
    captured = []
    norm = model.model.language_model.norm
    handle = norm.register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    try:
        out = lvlm_features(model, processor, [picture(0), "Describe the image."], max_new_tokens=7,
                            min_new_tokens=7)
    finally:
        handle.remove()
    n = len(out.token_ids)
    assert n == 7 and out.features.shape == (7, tiny.VLM_DIM)  # one feature per generated token
    # decoding step t: the final norm's output at the last position, from which token t was predicted
    prompt_len = captured[0].shape[1]
    assert prompt_len > 7 and all(c.shape[1] == 1 for c in captured[1:n])
    expected = torch.stack([captured[0][0, -1]] + [c[0, -1] for c in captured[1:n]])
    torch.testing.assert_close(out.features, expected)
    assert torch.equal(model.lm_head(out.features).argmax(-1), out.token_ids)  # greedy: x_t predicts y_t
    # not the prompt's tokens: those are the input-token ablation, and they are different vectors
    assert not any(torch.allclose(out.features[0], captured[0][0, i]) for i in range(prompt_len - 1))
    assert out.text == processor.tokenizer.decode(out.token_ids)
    assert out.offsets[0] == 0 and out.offsets[-1] == len(out.text)


def test_eos_ends_the_features(vlm):
    model, processor = vlm
    eos = model.generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    saved = model.lm_head.weight.clone()
    calls = {"n": 0}  # make EOS the 4th generated token by raising its logit at the 4th decoding step

    def force(module, args, logits):
        calls["n"] += 1
        if calls["n"] == 4:
            logits = logits.clone()
            logits[..., eos] = 1e4
        return logits

    handle = model.lm_head.register_forward_hook(force)
    try:
        out = lvlm_features(model, processor, [picture(1), "Describe."], max_new_tokens=10)
    finally:
        handle.remove()
    assert torch.equal(model.lm_head.weight, saved)
    assert len(out.token_ids) == 3 and out.features.shape[0] == 3 and eos not in out.token_ids.tolist()


def test_input_token_ablation_gives_the_prompts_features(vlm):
    model, processor = vlm
    gen = lvlm_features(model, processor, [picture(0), "Describe the image."], max_new_tokens=5, min_new_tokens=5)
    inp = lvlm_features(model, processor, [picture(0), "Describe the image."], max_new_tokens=5, min_new_tokens=5,
                        source="input")
    messages = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {
        "type": "text", "text": "Describe the image."}]}], add_generation_prompt=True, tokenize=False)
    prompt_len = processor(text=[messages], images=[picture(0)], return_tensors="pt")["input_ids"].shape[1]
    assert inp.features.shape[0] == prompt_len != gen.features.shape[0]
    assert inp.text == gen.text and not inp.token_aligned  # same target text, no token split possible
    torch.testing.assert_close(inp.features[-1], gen.features[0])  # the last prompt position predicts token 1


def test_interleaved_images_and_texts_reach_the_vlm(vlm):
    model, processor = vlm
    a = lvlm_features(model, processor, ["red: ", picture(0), "blue: ", picture(1), "green: "], max_new_tokens=4,
                      min_new_tokens=4)
    b = lvlm_features(model, processor, ["red: ", picture(0), "blue: ", picture(2), "green: "], max_new_tokens=4,
                      min_new_tokens=4)
    assert a.features.shape == b.features.shape == (4, tiny.VLM_DIM)
    assert not torch.allclose(a.features, b.features)  # the second image matters


def test_clip_tokens_are_cls_plus_2x2_pooled_patches():
    vision, processor = tiny.clip_vision(0), tiny.clip_image_processor()
    captions = ("a red square on a blue background", "a big green star on a white background")
    images = [toy.toy_image(c) for c in captions]
    tokens = clip_image_tokens(vision, processor, images)
    assert tokens.shape == (2, 1 + 4, tiny.CLIP_DIM)  # 4x4 patches -> 2x2 after pooling, + CLS
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    hidden = vision(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
    torch.testing.assert_close(tokens[:, 0], hidden[:, 0])
    grid = hidden[:, 1:].reshape(2, 4, 4, -1)
    torch.testing.assert_close(tokens[:, 1], grid[:, :2, :2].mean((1, 2)))  # top-left 2x2 block
    torch.testing.assert_close(tokens[:, 4], grid[:, 2:, 2:].mean((1, 2)))
    assert clip_image_tokens(vision, processor, images, pool=1).shape == (2, 17, tiny.CLIP_DIM)


def sample(i):
    g = torch.Generator().manual_seed(i)
    n = 3 + i % 3
    return TokenFeatures(features=torch.randn(n, 4, generator=g), text=f"text {i}",
                         token_ids=torch.arange(n), offsets=torch.arange(n + 1))


def test_shards_round_trip_and_resume(tmp_path):
    inputs = list(range(7))
    calls = []

    def crashing(i, x):
        if i == 4:
            raise KeyboardInterrupt  # the job is killed while sample 4 is being computed
        calls.append(i)
        return sample(x)

    with pytest.raises(KeyboardInterrupt):
        extract_to_shards(inputs, crashing, tmp_path, shard_size=3, dtype=torch.float32, progress=False)
    assert calls == [0, 1, 2, 3] and len(FeatureDataset(tmp_path)) == 3  # only the complete shard counts
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind

    def compute(i, x):
        calls.append(i)
        return sample(x)

    assert extract_to_shards(inputs, compute, tmp_path, shard_size=3, dtype=torch.float32, progress=False,
                             limit=2) == 5  # a time-limited call stops cleanly, flushing what it computed
    assert extract_to_shards(inputs, compute, tmp_path, shard_size=3, dtype=torch.float32, progress=False) == 7
    assert calls[4:] == [3, 4, 5, 6]  # each sample computed once after the crash
    ds = FeatureDataset(tmp_path)
    assert len(ds) == 7
    for i in range(7):
        got, want = ds[i], sample(i)
        assert torch.equal(got.features, want.features) and got.text == want.text
        assert torch.equal(got.token_ids, want.token_ids) and torch.equal(got.offsets, want.offsets)
    shards = json.loads((tmp_path / "index.json").read_text())["shards"]
    assert [(s["start"], s["count"]) for s in shards] == [(0, 3), (3, 2), (5, 2)]


def test_float16_storage_and_clip_records(tmp_path):
    writer = ShardedFeatureWriter(tmp_path, shard_size=10, dtype=torch.float16, metadata={"variant": "clip"})
    f = torch.randn(5, 4)
    writer.add(TokenFeatures(features=f, text="a red square"))
    writer.flush()
    ds = FeatureDataset(tmp_path)
    item = ds[0]
    assert item.token_ids is None and not item.token_aligned and ds.metadata == {"variant": "clip"}
    torch.testing.assert_close(item.features, f.half().float())
    with pytest.raises(IndexError):
        ds[1]
    with pytest.raises(ValueError, match="index.json"):
        FeatureDataset(tmp_path / "nowhere")
