"""write_cache's bookkeeping: shards, repeated and finished clips, and what a resumed cache refuses."""

import json
from dataclasses import replace

import pytest
import torch
from safetensors import safe_open

from reasondiff.conditioning import encode_video, place_image
from reasondiff.data import write_cache
from reasondiff.data.dataset import CachedClipDataset
from reasondiff.data.toy import toy_clips
from reasondiff.models import tiny_wan


@pytest.fixture(scope="module")
def encoders():
    c = tiny_wan.wan_components(seed=0)
    return {k: c[k] for k in ("vae", "text_encoder", "tokenizer", "image_encoder", "image_processor")}


def rows(out, name):
    return [json.loads(line) for line in (out / name).read_text().splitlines()]


def test_clips_fill_shards_in_order_and_a_repeated_or_cached_clip_is_taken_once(encoders, tmp_path):
    clips = list(toy_clips(5, num_frames=5, size=16))
    out = tmp_path / "cache"
    write_cache(out, [*clips[:3], clips[0]], clips_per_shard=2, anchors_per_clip=2, condition_videos=True,
                max_sequence_length=16, progress=False, **encoders)
    write_cache(out, clips, clips_per_shard=2, anchors_per_clip=2, condition_videos=True, max_sequence_length=16,
                progress=False, **encoders)
    index = rows(out, "clips.jsonl")
    assert [(r["clip_id"], r["shard"]) for r in index] == [(c.clip_id, s) for c, s in zip(clips, [0, 0, 1, 2, 2])]
    assert all(1 in r["anchor_positions"] and len(r["anchor_positions"]) == 2 for r in index)
    with safe_open(str(out / "clips-00002.safetensors"), framework="pt") as f:
        assert sorted(f.keys()) == sorted(f"{c.clip_id}/{k}" for c in clips[3:]
                                          for k in ("latents", "anchors", "image_embeds", "condition_videos"))
    texts = rows(out, "texts.jsonl")
    assert len({r["text"] for r in texts}) == len(texts)  # a caption met in an earlier shard is not encoded again


def test_a_resumed_cache_refuses_other_settings_and_other_clip_lengths(encoders, tmp_path):
    clips = list(toy_clips(2, num_frames=5, size=16))
    out = tmp_path / "cache"
    write_cache(out, clips[:1], anchors_per_clip=2, max_sequence_length=16, progress=False, **encoders)
    with pytest.raises(ValueError, match="was built with"):
        write_cache(out, clips, anchors_per_clip=3, max_sequence_length=16, progress=False, **encoders)
    longer = replace(clips[1], frames=clips[1].frames[[0] * 9], captions=[clips[1].captions[0]] * 9)
    with pytest.raises(ValueError, match="has 9 frames, the cache holds 5-frame clips"):
        write_cache(out, [longer], anchors_per_clip=2, max_sequence_length=16, progress=False, **encoders)
    with pytest.raises(ValueError, match="2 captions for 5 frames"):
        write_cache(tmp_path / "other", [replace(clips[0], captions=["a", "b"])], progress=False, **encoders)


def test_each_anchor_is_its_frame_encoded_on_its_own_and_the_zero_video_is_kept_beside_it(encoders, tmp_path):
    """The pipeline's c_i (the image alone through the VAE), wherever the frame sits; Wan's zero video with the
    frame at its place is what plain I2V and the no-enhanced-latents ablation read."""
    (clip,) = toy_clips(1, num_frames=9, size=16)
    out = tmp_path / "cache"
    write_cache(out, [clip], anchors_per_clip=3, condition_videos=True, max_sequence_length=16, progress=False,
                **encoders)
    (row,) = rows(out, "clips.jsonl")
    with safe_open(str(out / "clips-00000.safetensors"), framework="pt") as f:
        anchors, videos = f.get_tensor(f"{clip.clip_id}/anchors"), f.get_tensor(f"{clip.clip_id}/condition_videos")
    frames = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float() / 127.5 - 1  # [T, 3, H, W]
    positions = row["anchor_positions"]
    assert positions[0] == 1 and len(positions) == 3
    with torch.no_grad():
        alone = encode_video(encoders["vae"], frames[[p - 1 for p in positions]][:, :, None])[:, :, 0]
        placed = encode_video(encoders["vae"], place_image(frames[[p - 1 for p in positions]], positions, 9))
    torch.testing.assert_close(anchors, alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(videos, placed, rtol=0, atol=1e-5)
    assert not torch.allclose(anchors[1], videos[1, :, (positions[1] - 2) // 4 + 1], atol=1e-2)


def test_a_cache_of_the_old_format_is_refused_by_the_writer_and_the_reader(encoders, tmp_path):
    (clip,) = toy_clips(1, num_frames=5, size=16)
    out = tmp_path / "cache"
    write_cache(out, [clip], anchors_per_clip=2, max_sequence_length=16, progress=False, **encoders)
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "format": "reasondiff-cache/1"}))
    with pytest.raises(ValueError, match="reasondiff-cache/1.*build the cache again"):
        write_cache(out, [clip], anchors_per_clip=2, max_sequence_length=16, progress=False, **encoders)
    with pytest.raises(ValueError, match="reasondiff-cache/1.*build the cache again"):
        CachedClipDataset(out)
