import functools
import json
import os
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from synthetic import GOOD, ffmpeg_frames, index_frame, read_index, write_video
from typer.testing import CliRunner

from reasondiff.data.cli import app
from killing import killed_command, run_killed
from reasondiff.data.sampling import SampledClips, list_sources, sample_videos
from reasondiff.data.video import clip_starts, parse_size

runner = CliRunner()
STEP = Fraction(1, 5)


def rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def on_screen(stamps, t):
    """Index of the source frame on screen at time t: the last one whose timestamp is <= t."""
    return max(i for i, s in enumerate(stamps) if s <= t)


def test_sample_takes_the_frame_on_screen_at_every_grid_time(video_dir, tmp_path):
    root, truth = video_dir
    out = tmp_path / "clips"
    result = runner.invoke(app, ["sample", str(root), str(out), "--frames", "8", "--size", "32",
                                 "--clips-per-video", "2", "--shard-size", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "10 clips from 5 videos" in result.output and "skipped 3 videos" in result.output

    manifest = rows(out / "manifest.jsonl")
    ids = [row["clip_id"] for row in manifest]
    assert sorted(ids) == sorted(f"{name}-{k:03d}" for name in GOOD for k in range(2))  # every kept clip once
    shards = {}
    for row in manifest:
        shards.setdefault(row["shard"], load_file(str(out / f"clips-{row['shard']:05d}.safetensors")))
    assert sorted(k for shard in shards.values() for k in shard) == sorted(ids)  # no stray or missing frames

    for row in manifest:
        stamps = truth[row["video_id"]]
        origin = stamps[0]
        start = Fraction(row["start"]).limit_denominator(1000)
        assert start % STEP == 0  # every clip starts on the global 0.2 s grid
        frames = shards[row["shard"]][row["clip_id"]]
        assert frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8
        for i, (grid, taken) in enumerate(zip(row["grid"], row["timestamps"])):
            t = start + i * STEP
            assert grid == pytest.approx(float(t), abs=1e-6)
            expected = on_screen([s - origin for s in stamps], t)
            assert taken == pytest.approx(float(stamps[expected] - origin), abs=1e-6)
            frame_length = stamps[expected + 1] - stamps[expected] if expected + 1 < len(stamps) else STEP
            assert 0 <= float(t) - taken < float(frame_length)  # within one source frame of the grid
            pixels = frames[i] if row["rotation"] == 0 else np.rot90(frames[i], k=-1)
            assert read_index(pixels) == expected  # and the pixels really are that source frame
    second = [row for row in manifest if row["clip_index"] == 1]
    assert all(row["start"] >= 1.6 for row in second)  # the second clip comes after the first, not overlapping
    rotated = next(row for row in manifest if row["video_id"] == "rotated")
    assert rotated["rotation"] == 90

    skipped = {row["video_id"]: row["reason"] for row in rows(out / "skipped.jsonl")}
    assert set(skipped) == {"short", "truncated", "corrupt"}
    assert "too short" in skipped["short"] and "short.mp4" in skipped["short"]
    assert "truncated" in skipped["truncated"] and "cannot open" in skipped["corrupt"]


def test_rotation_follows_the_display_matrix_like_ffmpeg(tmp_path):
    from synthetic import constant_rate, rotate

    src, rotated = tmp_path / "wide.mp4", tmp_path / "portrait.mp4"
    write_video(src, constant_rate(Fraction(25), 2), width=64, height=48)
    rotate(src, rotated, 90)
    out = tmp_path / "clips"
    report = sample_videos(tmp_path, out, num_frames=3, size=(48, 64), progress=False)  # both files, one folder
    assert report.kept_clips == 2
    clips = SampledClips(out)
    upright = clips.frames("portrait-000")
    assert upright.shape == (3, 64, 48, 3)  # shown 48 wide and 64 tall
    reference = ffmpeg_frames(rotated, 48, 64)  # ffmpeg's player turns it the same way
    for i, t in enumerate(clips.by_id["portrait-000"]["timestamps"]):
        diff = np.abs(upright[i].astype(int) - reference[round(t * 25)].astype(int)).mean()
        assert diff < 4, diff
    red = upright[0, ..., 0].astype(int) - upright[0, ..., 1]
    assert red[-3:, :3].mean() > 150 and red[:3, :3].mean() < 50  # the source's top-left corner is now bottom-left
    assert clips.by_id["wide-000"]["rotation"] == 0 and clips.frames("wide-000").shape == (3, 64, 48, 3)


def test_a_copy_cut_starts_at_its_first_shown_frame(tmp_path):
    """`ffmpeg -ss 1.3 -c copy` keeps the frames before the cut for the decoder and an edit list that hides them."""
    import imageio_ffmpeg
    from synthetic import constant_rate

    src, cut = tmp_path / "full.mp4", tmp_path / "cut.mp4"
    write_video(src, constant_rate(Fraction(25), 4))
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-ss", "1.3", "-i", str(src),
                    "-c", "copy", str(cut)], check=True)
    reference = ffmpeg_frames(cut, 64, 64)  # what a player shows
    first_shown = read_index(reference[0])
    assert first_shown > 25  # the cut really hides the first second
    out = tmp_path / "clips"
    sample_videos(tmp_path, out, num_frames=8, size=(64, 64), progress=False)
    clips = SampledClips(out)
    row = clips.by_id["cut-000"]
    assert row["timestamps"] == pytest.approx([i * 0.2 for i in range(8)], abs=1e-6)
    assert [read_index(f) for f in clips.frames("cut-000")] == [first_shown + 5 * i for i in range(8)]
    assert [read_index(reference[5 * i]) for i in range(8)] == [first_shown + 5 * i for i in range(8)]


def test_csv_input_keeps_captions_and_reports_missing_files(video_dir, tmp_path):
    root, _ = video_dir
    table = tmp_path / "list.csv"
    table.write_text("videoid,contentUrl,name\n"
                     f"v1,{root / 'fps25.mp4'},a cat\n"
                     "v2,missing/nowhere.mp4,a dog\n"
                     f"v3,{root / 'vfr.mp4'},\n"
                     f"v4,{(root / 'fps24.mp4').as_uri()},a bird\n"  # URLs are downloaded first
                     f"v5,{(tmp_path / 'gone.mp4').as_uri()},a fish\n")
    sources = list_sources(table)
    assert [s.video_id for s in sources] == ["v1", "v2", "v3", "v4", "v5"]
    assert sources[1].location == str(tmp_path / "missing" / "nowhere.mp4")  # relative to the CSV
    out = tmp_path / "clips"
    report = sample_videos(table, out, num_frames=5, size=(32, 32), progress=False)
    manifest = rows(out / "manifest.jsonl")
    assert [(r["clip_id"], r.get("source_caption")) for r in manifest] == [
        ("v1-000", "a cat"), ("v3-000", None), ("v4-000", "a bird")]
    assert manifest[2]["source"] == (root / "fps24.mp4").as_uri()
    assert np.array_equal(SampledClips(out).frames("v4-000"),
                          sample_one_local(root / "fps24.mp4", tmp_path / "local"))
    assert [s["video_id"] for s in report.skipped] == ["v2", "v5"]
    assert "nowhere.mp4" in report.skipped[0]["reason"] and "cannot download" in report.skipped[1]["reason"]


def sample_one_local(path, out):
    sample_videos(path.parent, out, num_frames=5, size=(32, 32), limit=2, progress=False)  # corrupt, fps24
    return SampledClips(out).frames("fps24-000")


def test_bad_input_exits_with_code_2(tmp_path, video_dir):
    root, _ = video_dir
    for args, message in [
        (["sample", str(tmp_path / "nope"), str(tmp_path / "o")], "input not found"),
        (["sample", str(root), str(tmp_path / "o"), "--size", "big"], "size must be"),
        (["sample", str(root), str(tmp_path / "o"), "--interval", "0"], "interval must be positive"),
        (["sample", str(tmp_path), str(tmp_path / "o")], "no videos found"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    runner.invoke(app, ["sample", str(root), str(tmp_path / "o2"), "--frames", "3", "--size", "32", "--limit", "1"])
    result = runner.invoke(app, ["sample", str(root), str(tmp_path / "o2"), "--frames", "5", "--size", "32"])
    assert result.exit_code == 2 and "other settings" in result.output


def test_clip_starts_are_on_the_grid_and_do_not_overlap():
    assert clip_starts(Fraction(3), 16, STEP, 1) == [0]
    assert clip_starts(Fraction(29, 10), 16, STEP, 1) == []  # 16 frames need a frame at 3.0 s
    assert clip_starts(Fraction(10), 6, STEP, 3) == [0, Fraction(22, 5), 9]  # the last ends on the last frame
    assert clip_starts(Fraction(11, 5), 6, STEP, 5) == [0, Fraction(6, 5)]  # only two 6-frame clips fit in 2.2 s
    assert clip_starts(Fraction(2), 6, STEP, 5) == [0]
    assert parse_size("512") == (512, 512) and parse_size("832x480") == (832, 480)


def _sample(csv, out):
    sample_videos(csv, out, num_frames=5, size=(32, 32), clips_per_shard=2, progress=False)


@pytest.fixture
def many_videos(tmp_path):
    """7 videos (one too short) listed in a CSV, for the interruption tests."""
    folder = tmp_path / "src"
    folder.mkdir()
    lines = ["videoid,path,name"]
    for i in range(7):
        seconds = 0.5 if i == 3 else 1.2
        write_video(folder / f"v{i}.mp4", [k / 10 for k in range(int(seconds * 10))])
        lines.append(f"v{i},src/v{i}.mp4,video {i}")
    table = tmp_path / "list.csv"
    table.write_text("\n".join(lines) + "\n")
    return table


def _tree(out):
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix != ".tmp"}
    return {k: (load_file(str(out / k)) if k.endswith(".safetensors") else v) for k, v in files.items()}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            assert a[k].keys() == b[k].keys() and all(np.array_equal(a[k][n], b[k][n]) for n in a[k])
        else:
            assert a[k] == b[k], k


def test_killed_sample_resumes_to_the_same_dataset(many_videos, tmp_path):
    reference = tmp_path / "reference"
    sample_videos(many_videos, reference, num_frames=5, size=(32, 32), clips_per_shard=2, progress=False)
    expected = _tree(reference)
    assert len(rows(reference / "manifest.jsonl")) == 6 and len(rows(reference / "skipped.jsonl")) == 1

    # Checkpoints fall after each video and between a shard's write and its manifest rows; kill at several.
    for kill_after in (1, 3, 4, 7):
        out = tmp_path / f"killed{kill_after}"
        run_killed(functools.partial(_sample, many_videos, out), kill_after)
        partial = len(rows(out / "manifest.jsonl")) if (out / "manifest.jsonl").exists() else 0
        assert partial < 6
        sample_videos(many_videos, out, num_frames=5, size=(32, 32), clips_per_shard=2, progress=False)
        _same(_tree(out), expected)

    # The command line, killed for real in a subprocess, then resumed.
    out = tmp_path / "cli"
    cmd = [sys.executable, *killed_command("reasondiff.data.cli", 5), "sample", str(many_videos), str(out), "--frames", "5",
           "--size", "32", "--shard-size", "2", "--no-progress"]
    tests = str(Path(__file__).parents[1])  # killing.py
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert 0 < len(rows(out / "manifest.jsonl")) < 6
    report = sample_videos(many_videos, out, num_frames=5, size=(32, 32), clips_per_shard=2, progress=False)
    assert report.already_done > 0
    _same(_tree(out), expected)


@pytest.mark.timeout(120)
def test_parallel_workers_give_the_same_dataset(many_videos, tmp_path):
    # Workers after decoding in this process: forked workers inherited PyAV's scaler thread pool without its
    # threads and hung here; spawned ones start clean.
    sample_videos(many_videos, tmp_path / "a", num_frames=5, size=(32, 32), clips_per_shard=2, progress=False)
    sample_videos(many_videos, tmp_path / "b", num_frames=5, size=(32, 32), clips_per_shard=2, workers=2,
                  progress=False)
    _same(_tree(tmp_path / "a"), _tree(tmp_path / "b"))


def test_jpeg_store_is_close_to_raw_and_read_the_same_way(video_dir, tmp_path):
    root, _ = video_dir
    args = ["sample", str(root), "--frames", "6", "--size", "32", "--limit", "3", "--no-progress"]
    for store in ("raw", "jpeg"):
        result = runner.invoke(app, [*args[:2], str(tmp_path / store), *args[2:], "--store", store])
        assert result.exit_code == 0, result.output
    raw, jpeg = SampledClips(tmp_path / "raw"), SampledClips(tmp_path / "jpeg")
    assert raw.rows == jpeg.rows and len(raw) == 2 and jpeg.meta["store"] == "jpeg"
    for row in raw.rows:
        a, b = raw.frames(row["clip_id"]), jpeg.frames(row["clip_id"])
        assert a.shape == b.shape == (6, 32, 32, 3) and b.dtype == np.uint8
        assert np.abs(a.astype(int) - b).mean() < 3
        assert [read_index(f) for f in a] == [read_index(f) for f in b]
    result = runner.invoke(app, [*args[:2], str(tmp_path / "x"), *args[2:], "--store", "png"])
    assert result.exit_code == 2 and "--store must be one of" in result.output


def test_index_frames_survive_the_codec():
    assert read_index(index_frame(12345)) == 12345
