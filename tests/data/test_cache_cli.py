import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from reasondiff.data import CachedClipDataset
from reasondiff.data.captioning import CAPTIONS_FILE, PARTS_DIR
from reasondiff.data.cli import app
from reasondiff.data.sampling import SampledClips, sample_videos
from reasondiff.models import tiny_wan

runner = CliRunner()
FAST = ["--anchors", "2", "--shard-size", "3", "--max-sequence-length", "16", "--no-progress"]


def captioned(clips, dst):
    """The 9-frame clips with captions that repeat within and across clips (3 distinct texts per clip, 2 shared)."""
    shutil.copytree(clips, dst, ignore=shutil.ignore_patterns(CAPTIONS_FILE, PARTS_DIR))
    rows = []
    for row in SampledClips(dst).rows:
        texts = ["a cat enters"] * 3 + [f"the cat meets {row['video_id']}"] * 4 + ["a broken vase"] * 2
        rows.append({"clip_id": row["clip_id"], "captions": texts})
    (dst / CAPTIONS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return dst, rows


def test_cache_matches_the_vae_factors_and_deduplicates_captions(clips9, tmp_path):
    data, caption_rows = captioned(clips9, tmp_path / "clips")
    out = tmp_path / "cache"
    result = runner.invoke(app, ["cache", str(data), str(out), "--model", "tiny", *FAST])
    assert result.exit_code == 0, result.output
    assert "cached 4 clips" in result.output

    vae = tiny_wan.wan_components(seed=0)["vae"]
    t, s = vae.config.scale_factor_temporal, vae.config.scale_factor_spatial
    meta = json.loads((out / "meta.json").read_text())
    expected = [vae.config.z_dim, (9 - 1) // t + 1, 16 // s, 16 // s]
    assert meta["num_frames"] == 9 and meta["latent_shape"] == expected == [16, 3, 2, 2]

    texts = [json.loads(line) for line in (out / "texts.jsonl").read_text().splitlines()]
    distinct = {text for row in caption_rows for text in row["captions"]}
    clip_rows = [json.loads(line) for line in (out / "clips.jsonl").read_text().splitlines()]
    by_id = {r["id"]: r["text"] for r in texts}
    prompts = {by_id[r["prompt"]] for r in clip_rows}  # each clip's one prompt: its source caption from the CSV
    assert len(prompts) == len(clip_rows) and prompts.isdisjoint(distinct)
    assert sorted(r["text"] for r in texts) == sorted(distinct | prompts)
    assert len(texts) == len(by_id) == 2 + 4 + len(prompts)  # each text encoded once
    stored = {}
    for shard in {r["shard"] for r in texts}:
        stored.update(load_file(str(out / f"texts-{shard:05d}.safetensors")))
    assert sorted(k for k in stored if k != "_empty") == sorted(str(r["id"]) for r in texts)

    dataset = CachedClipDataset(out)
    assert len(dataset) == 4
    item = dataset[0]
    assert list(item["latents"].shape) == expected
    assert item["text_embeds"].shape[0] == 4  # three distinct captions in the clip, and its prompt
    assert item["prompt_index"] == 3
    # the lengths texts.jsonl records travel with the embeddings, and the zeros start exactly there
    assert all(stored[str(r["id"])].shape[0] == r["length"] for r in texts)
    assert item["text_lengths"].tolist() == item["text_embeds"].ne(0).any(-1).sum(-1).tolist()
    assert item["caption_index"].tolist() == [0] * 3 + [1] * 4 + [2] * 2
    assert item["anchor_position"] in json.loads((out / "clips.jsonl").read_text().splitlines()[0])["anchor_positions"]

    # Resuming a finished cache encodes nothing and changes nothing.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = runner.invoke(app, ["cache", str(data), str(out), "--model", "tiny", *FAST])
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_cache_loads_a_diffusers_folder_without_the_dit(clips9, tmp_path):
    from diffusers import WanImageToVideoPipeline

    data, _ = captioned(clips9, tmp_path / "clips")
    folder = tmp_path / "wan"
    WanImageToVideoPipeline(**tiny_wan.wan_components(seed=0)).save_pretrained(folder)
    shutil.rmtree(folder / "transformer")  # the cache must not need the 14B DiT
    result = runner.invoke(app, ["cache", str(data), str(tmp_path / "a"), "--model", str(folder), "--dtype",
                                 "float32", *FAST])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["cache", str(data), str(tmp_path / "b"), "--model", "tiny", *FAST])
    assert result.exit_code == 0, result.output
    a, b = load_file(str(tmp_path / "a" / "clips-00000.safetensors")), load_file(str(tmp_path / "b" / "clips-00000.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_cache_refuses_what_training_cannot_use(clips9, webvid_csv, tmp_path):
    sixteen = tmp_path / "sixteen"
    sample_videos(webvid_csv, sixteen, num_frames=16, size=(16, 16), limit=1, progress=False)
    (sixteen / CAPTIONS_FILE).write_text(json.dumps({"clip_id": "fps24_id-000", "captions": ["x"] * 16}) + "\n")
    result = runner.invoke(app, ["cache", str(sixteen), str(tmp_path / "c"), "--model", "tiny"])
    assert result.exit_code == 2 and "4k+1" in result.output and "--frames 33" in result.output

    data, rows = captioned(clips9, tmp_path / "clips")
    (data / CAPTIONS_FILE).write_text(json.dumps(rows[0]) + "\n")
    result = runner.invoke(app, ["cache", str(data), str(tmp_path / "c"), "--model", "tiny"])
    assert result.exit_code == 2 and "3 of 4 clips have no captions" in result.output
    result = runner.invoke(app, ["cache", str(tmp_path / "nothing"), str(tmp_path / "c"), "--model", "tiny"])
    assert result.exit_code == 2 and "not a sampled dataset" in result.output
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("model", ["/no/such/folder"])
def test_cache_reports_a_model_it_cannot_load(clips9, tmp_path, model):
    data, _ = captioned(clips9, tmp_path / "clips")
    result = runner.invoke(app, ["cache", str(data), str(tmp_path / "c"), "--model", model])
    assert result.exit_code == 2 and "could not load model" in result.output
