import json
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scripted_captioner import ScriptedCaptioner
from synthetic import read_index
from typer.testing import CliRunner

from reasondiff.data.captioning import (
    CAPTIONS_FILE,
    PARTS_DIR,
    caption_clips,
    merge_captions,
    read_captions,
    resolve_captioner,
    run_captioning,
)
from reasondiff.data.cli import app
from killing import run_killed
from reasondiff.data.sampling import SampledClips

runner = CliRunner()
HERE = Path(__file__).parent
SPEC = "py:scripted_captioner:ScriptedCaptioner"


def copy_dataset(src, dst):
    """The sampled clips alone (no captions yet)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(CAPTIONS_FILE, PARTS_DIR))
    return dst


def test_every_frame_gets_its_own_caption_in_batches(clips17, tmp_path):
    data = copy_dataset(clips17, tmp_path / "d")
    captioner = ScriptedCaptioner()
    run_captioning(data, captioner, batch_size=5, progress=False)
    clips = SampledClips(data)
    captions = read_captions(data)
    assert list(captions) == [row["clip_id"] for row in clips.rows]  # manifest order, each clip once
    for row, frames in clips:
        assert captions[row["clip_id"]] == [f"frame {read_index(f)}" for f in frames]
    assert captioner.batches == [5] * 13 + [3]  # 4 clips x 17 frames, batches cross clip boundaries
    # A second run has nothing left to do and leaves the result as it was.
    before = (data / CAPTIONS_FILE).read_text()
    again = ScriptedCaptioner()
    run_captioning(data, again, batch_size=5, progress=False)
    assert again.batches == [] and (data / CAPTIONS_FILE).read_text() == before


def _caption(data):
    run_captioning(data, ScriptedCaptioner(), batch_size=7, progress=False)


def test_killed_caption_resumes_to_the_same_captions(clips17, tmp_path):
    reference = copy_dataset(clips17, tmp_path / "ref")
    run_captioning(reference, ScriptedCaptioner(), batch_size=7, progress=False)
    expected = (reference / CAPTIONS_FILE).read_text()
    for kill_after in (2, 5, 9):  # 68 frames in batches of 7: 10 batches, the last checkpoint never reached
        data = copy_dataset(clips17, tmp_path / f"k{kill_after}")
        run_killed(functools.partial(_caption, data), kill_after)
        assert not (data / CAPTIONS_FILE).exists()
        done = sum(1 for part in (data / PARTS_DIR).glob("*.jsonl") for _ in part.read_text().splitlines())
        assert 0 <= done < 4
        resumed = ScriptedCaptioner()
        run_captioning(data, resumed, batch_size=7, progress=False)
        assert sum(resumed.batches) == 17 * (4 - done)  # only the clips not yet captioned are redone
        assert (data / CAPTIONS_FILE).read_text() == expected


def test_shares_of_many_processes_merge_without_loss_or_duplicates(clips17, tmp_path):
    data = copy_dataset(clips17, tmp_path / "d")
    caption_clips(data, ScriptedCaptioner(), rank=1, world_size=3, progress=False)  # an earlier, partial run
    ids = [row["clip_id"] for row in SampledClips(data).rows]
    rows, missing = merge_captions(data)
    assert rows == 1 and missing == [ids[0], ids[2], ids[3]]  # process 1 of 3 owns clip 1 of the manifest
    assert list(read_captions(data)) == [ids[1]]
    caption_clips(data, ScriptedCaptioner(), rank=0, world_size=2, progress=False)  # then another world size
    caption_clips(data, ScriptedCaptioner(), rank=1, world_size=2, progress=False)
    rows, missing = merge_captions(data)
    assert rows == 4 and missing == []
    reference = copy_dataset(clips17, tmp_path / "ref")
    run_captioning(reference, ScriptedCaptioner(), progress=False)
    assert (data / CAPTIONS_FILE).read_text() == (reference / CAPTIONS_FILE).read_text()


def test_two_accelerate_processes_equal_one(clips17, tmp_path):
    one = copy_dataset(clips17, tmp_path / "one")
    result = runner.invoke(app, ["caption", str(one), "--narrator", SPEC, "--batch-size", "4", "--no-progress"])
    assert result.exit_code == 0, result.output

    two = copy_dataset(clips17, tmp_path / "two")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    # accelerate's --cpu launcher starts one process whatever --num_processes says; --multi_gpu goes through
    # torchrun, which on a machine without GPUs starts CPU processes joined by gloo.
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "reasondiff.data.cli",
              "caption", str(two), "--narrator", SPEC, "--batch-size", "4", "--no-progress"]
    done = subprocess.run(launch, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    parts = sorted(p.name for p in (two / PARTS_DIR).glob("*.jsonl"))
    assert parts == ["rank-00000-of-00002.jsonl", "rank-00001-of-00002.jsonl"]  # both processes did work
    shares = [[json.loads(line)["clip_id"] for line in (two / PARTS_DIR / p).read_text().splitlines()] for p in parts]
    assert sorted(shares[0] + shares[1]) == sorted(read_captions(one)) and not set(shares[0]) & set(shares[1])
    assert (two / CAPTIONS_FILE).read_text() == (one / CAPTIONS_FILE).read_text()


def test_captioner_specs_and_bad_answers(clips17, tmp_path):
    assert isinstance(resolve_captioner(SPEC), ScriptedCaptioner)
    for spec, message in [("py:nowhere_module:X", "cannot load captioner"), ("py:scripted_captioner", "must look like"),
                          ("py:json:dumps", "without arguments"), ("py:json:JSONDecoder", "has no caption")]:
        with pytest.raises(ValueError, match=message):
            resolve_captioner(spec)

    class Short:
        def caption(self, frames):
            return ["only one"]

    data = copy_dataset(clips17, tmp_path / "d")
    with pytest.raises(ValueError, match="returned 1 captions for 4 frames"):
        caption_clips(data, Short(), batch_size=4, progress=False)
    result = runner.invoke(app, ["caption", str(data), "--narrator", "py:nowhere_module:X"])
    assert result.exit_code == 2 and "cannot load captioner" in result.output


def test_other_specs_go_to_the_vision_narrator(monkeypatch, tmp_path):
    narrator = pytest.importorskip("reasondiff.narrator")
    registry = pytest.importorskip("reasondiff.narrator.registry")
    if not isinstance(getattr(registry, "_FACTORIES", None), dict):
        pytest.skip("reasondiff.narrator has no backend registry in this checkout")
    monkeypatch.setenv("REASONDIFF_CACHE", str(tmp_path))
    backend = object()
    # Registered for this test only (monkeypatch removes it), so the narrator's own registry tests see no stranger.
    monkeypatch.setitem(registry._FACTORIES, "datatest", lambda target, **options: backend)
    captioner = resolve_captioner("datatest:anything")
    assert isinstance(captioner, narrator.VisionNarrator) and captioner.backend is backend
    assert callable(captioner.caption)
