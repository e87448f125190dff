import json
import shutil

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file
from scripted_captioner import ScriptedCaptioner
from typer.testing import CliRunner

from reasondiff.data.benchmarks import build_unpaired, read_benchmark
from reasondiff.data.captioning import CAPTIONS_FILE, PARTS_DIR, read_captions, run_captioning
from reasondiff.data.cli import app
from reasondiff.data.sampling import SampledClips, sample_videos

runner = CliRunner()


@pytest.fixture(scope="module")
def captioned(clips17, tmp_path_factory):
    data = tmp_path_factory.mktemp("bench") / "clips"
    shutil.copytree(clips17, data, ignore=shutil.ignore_patterns(CAPTIONS_FILE, PARTS_DIR))
    run_captioning(data, ScriptedCaptioner(), progress=False)
    return data


def test_unpaired_set_puts_the_image_at_one_end_and_the_prompt_at_the_other(captioned, tmp_path):
    out = tmp_path / "unpaired"
    result = runner.invoke(app, ["build-unpaired", str(captioned), str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    rows = read_benchmark(out)
    clips = SampledClips(captioned)
    captions = read_captions(captioned)
    assert sorted(r["id"] for r in rows) == sorted(clips.by_id) and len(rows) == 4
    assert sorted(r["image_end"] for r in rows) == ["first", "first", "last", "last"]  # half each
    for row in rows:
        frames = clips.frames(row["clip_id"])
        per_frame = captions[row["clip_id"]]
        first = row["image_end"] == "first"
        assert (row["position"], row["prompt_position"]) == ((1, 17) if first else (17, 1))
        assert row["prompt"] == per_frame[-1 if first else 0] != per_frame[0 if first else -1]  # the opposite end
        assert np.array_equal(np.asarray(Image.open(row["image"])), frames[row["position"] - 1])
        assert row["captions"] == per_frame and row["num_frames"] == 17  # ground truth for CLIP-Text scoring
        assert row["timestamps"] == clips.by_id[row["clip_id"]]["timestamps"]
        pointer = row["frames"]
        stored = load_file(f"{pointer['dataset']}/clips-{pointer['shard']:05d}.safetensors")[pointer["key"]]
        assert np.array_equal(stored, frames)
    info = json.loads((out / "info.json").read_text())
    assert info["first"] == info["last"] == 2 and info["seed"] == 3


def test_unpaired_choice_is_seeded_and_balanced(captioned, tmp_path):
    def ends(seed, num=None):
        build_unpaired(captioned, tmp_path / f"s{seed}-{num}", seed=seed, num=num)
        return [(r["id"], r["image_end"]) for r in read_benchmark(tmp_path / f"s{seed}-{num}")]

    assert ends(0) == ends(0)
    layouts = {tuple(ends(seed)) for seed in range(6)}
    assert len(layouts) > 1  # the seed matters
    for layout in layouts:
        assert sorted(end for _, end in layout) == ["first", "first", "last", "last"]
    subset = ends(1, num=3)
    assert len(subset) == 3 and sorted(end for _, end in subset) == ["first", "first", "last"]


def test_paired_set_uses_the_first_frame_and_the_clip_caption(captioned, tmp_path):
    out = tmp_path / "paired"
    result = runner.invoke(app, ["build-paired", str(captioned), str(out)])
    assert result.exit_code == 0, result.output
    clips = SampledClips(captioned)
    rows = read_benchmark(out)
    assert [r["id"] for r in rows] == [r["clip_id"] for r in clips.rows]
    for row in rows:
        assert row["position"] == 1 and row["prompt"] == f"a video at {row['video_id'].removesuffix('_id')}"
        assert np.array_equal(np.asarray(Image.open(row["image"])), clips.frames(row["clip_id"])[0])
        assert row["captions"] == read_captions(captioned)[row["clip_id"]]
    result = runner.invoke(app, ["build-paired", str(captioned), str(tmp_path / "mid"), "--prompt", "middle"])
    assert result.exit_code == 0, result.output
    for row in read_benchmark(tmp_path / "mid"):
        assert row["prompt"] == read_captions(captioned)[row["id"]][8] and row["prompt_source"] == "middle"


def test_builders_explain_what_is_missing(video_dir, captioned, tmp_path):
    root, _ = video_dir
    plain = tmp_path / "plain"  # sampled from a folder: no dataset captions, not captioned yet
    sample_videos(root, plain, num_frames=4, size=(16, 16), limit=2, progress=False)  # corrupt, fps24
    result = runner.invoke(app, ["build-paired", str(plain), str(tmp_path / "p")])
    assert result.exit_code == 2 and "no source caption" in result.output and "--prompt" in result.output
    result = runner.invoke(app, ["build-unpaired", str(plain), str(tmp_path / "u")])
    assert result.exit_code == 2 and "reasondiff data caption" in result.output
    result = runner.invoke(app, ["build-paired", str(captioned), str(tmp_path / "p"), "--prompt", "random"])
    assert result.exit_code == 2 and "--prompt must be one of" in result.output
