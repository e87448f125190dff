"""A kill mid-append leaves a torn last line: resuming drops it with a warning and redoes its item; any other
corrupt line stops the job with the file and line named."""

import json
import logging
import shutil

import pytest
from scripted_captioner import ScriptedCaptioner
from typer.testing import CliRunner

from reasondiff.data.captioning import CAPTIONS_FILE, PARTS_DIR, run_captioning
from reasondiff.data.cli import app
from reasondiff.data.jsonl import read_jsonl
from reasondiff.data.sampling import sample_videos

runner = CliRunner()


def tear(path, keep_bytes=9):
    """Cut the file's last row after `keep_bytes` bytes, as a SIGKILL during its write would."""
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: last + keep_bytes])


def test_a_torn_last_row_is_dropped_with_a_warning_and_cut_on_repair(tmp_path, caplog):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3, "b": "unfini')
    with caplog.at_level(logging.WARNING, logger="reasondiff"):
        assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    assert "rows.jsonl: dropped a torn last line (line 3" in caplog.text
    assert path.read_text().endswith("unfini")  # reading alone changes nothing
    assert read_jsonl(path, repair=True) == [{"a": 1}, {"a": 2}]
    assert path.read_text() == '{"a": 1}\n{"a": 2}\n'  # the next append starts on a fresh line


def test_a_whole_last_row_without_its_newline_is_kept_and_given_one(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}')
    assert read_jsonl(path, repair=True) == [{"a": 1}, {"a": 2}]
    assert path.read_text() == '{"a": 1}\n{"a": 2}\n'


@pytest.mark.parametrize("bad", ['{"a": 2', "[1, 2]", "\xff\xfe"])
def test_a_corrupt_line_before_the_last_is_named_with_file_and_line(tmp_path, bad):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\n' + bad.encode("latin-1") + b'\n{"a": 3}\n')
    with pytest.raises(ValueError, match=r"rows\.jsonl, line 2, is not a JSON"):
        read_jsonl(path)


def test_a_torn_manifest_row_is_redone_by_the_resumed_sample(webvid_csv, tmp_path):
    settings = dict(num_frames=5, interval=0.2, size=(16, 16), clips_per_shard=1, progress=False)
    reference = tmp_path / "reference"
    sample_videos(webvid_csv, reference, **settings)
    out = tmp_path / "torn"
    sample_videos(webvid_csv, out, **settings)
    tear(out / "manifest.jsonl")
    report = sample_videos(webvid_csv, out, **settings)
    assert report.kept_videos == 1  # only the torn row's video was sampled again
    assert (out / "manifest.jsonl").read_text() == (reference / "manifest.jsonl").read_text()


def test_a_corrupt_manifest_line_stops_sample_with_one_line(webvid_csv, tmp_path):
    out = tmp_path / "data"
    args = ["sample", str(webvid_csv), str(out), "--frames", "5", "--size", "16", "--no-progress"]
    assert runner.invoke(app, args).exit_code == 0
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    lines[0] = '{"video_id": "x", broken\n'
    (out / "manifest.jsonl").write_text("".join(lines))
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    (error,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "manifest.jsonl, line 1, is not a JSON row" in error and "Traceback" not in result.output


def test_a_torn_caption_part_row_is_redone(clips17, tmp_path):
    data = tmp_path / "d"
    shutil.copytree(clips17, data, ignore=shutil.ignore_patterns(CAPTIONS_FILE, PARTS_DIR))
    reference = tmp_path / "ref"
    shutil.copytree(data, reference)
    run_captioning(reference, ScriptedCaptioner(), batch_size=17, progress=False)
    run_captioning(data, ScriptedCaptioner(), batch_size=17, progress=False)
    (data / CAPTIONS_FILE).unlink()  # as if killed before the merge, with the part's last row torn
    (part,) = (data / PARTS_DIR).glob("*.jsonl")
    tear(part, keep_bytes=30)
    resumed = ScriptedCaptioner()
    run_captioning(data, resumed, batch_size=17, progress=False)
    assert sum(resumed.batches) == 17  # one clip captioned again
    assert (data / CAPTIONS_FILE).read_text() == (reference / CAPTIONS_FILE).read_text()
    assert all(json.loads(line) for line in part.read_text().splitlines())
