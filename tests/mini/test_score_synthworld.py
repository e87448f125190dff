"""`reasondiff eval build-synthworld` + `eval score` end to end, as a researcher puts a model on the benchmark."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from reasondiff.cli import app
from reasondiff.media import save_video
from reasondiff.mini.bench import build_synthworld
from reasondiff.mini.degenerate import degenerate
from reasondiff.mini.world import EventScript

runner = CliRunner()


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    build_synthworld(out, "unpaired", 4, seed=3, train_clips=20, log=lambda m: None)
    return out


def write(bench, kind, folder, size=64):
    folder.mkdir(parents=True, exist_ok=True)
    for line in (bench / "benchmark.jsonl").read_text().splitlines():
        row = json.loads(line)
        video = degenerate(kind, EventScript(**row["world"]), row["position"])
        if size != 64:  # another model's resolution: eval score resizes to the benchmark's
            video = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.NEAREST)) for f in video])
        save_video(video.astype(np.float32) / 255.0, folder / f"{row['id']}.mp4", fps=8)


def score(bench, videos, out, *extra):
    return runner.invoke(app, ["eval", "score", "-b", str(bench / "benchmark.jsonl"), "--videos", str(videos),
                               "-o", str(out), *extra])


def test_true_clips_pass_and_a_static_image_fails_with_intervals(bench, tmp_path):
    write(bench, "truth", tmp_path / "truth", size=128)
    write(bench, "static", tmp_path / "static")
    result = score(bench, tmp_path / "truth", tmp_path / "s_truth", "--label", "truth")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "s_truth" / "summary.json").read_text())
    assert set(summary) == {"sharpness", "motion_smoothness", "dynamic_degree", "anchor_psnr", "text_adherence",
                            "causal_order", "continuity"}
    assert summary["causal_order"]["mean"] == 1.0 and summary["causal_order"]["n"] == 4
    assert summary["text_adherence"]["mean"] >= 0.9 and summary["anchor_psnr"]["mean"] > 25
    lo, hi = summary["anchor_psnr"]["ci95"]
    assert lo <= summary["anchor_psnr"]["mean"] <= hi
    stored = json.loads((tmp_path / "s_truth" / "score.json").read_text())
    assert stored["measured_with"] == {"motion_smoothness": "farneback", "dynamic_degree": "farneback"}

    static = score(bench, tmp_path / "static", tmp_path / "s_static", "--label", "static")
    assert static.exit_code == 0, static.output
    assert json.loads((tmp_path / "s_static" / "summary.json").read_text())["causal_order"]["mean"] == 0.0

    again = score(bench, tmp_path / "truth", tmp_path / "s_truth", "--label", "truth")  # resumes: nothing left
    assert again.exit_code == 0 and "[1/" not in again.output
    report = runner.invoke(app, ["eval", "report", str(tmp_path / "s_truth"), str(tmp_path / "s_static"),
                                 "-o", str(tmp_path / "report"), "--baseline", "static"])
    assert report.exit_code == 0, report.output
    assert "+1.000 [+1.000, +1.000] ✓" in (tmp_path / "report" / "differences.md").read_text()


def test_missing_videos_and_changed_settings_are_refused(bench, tmp_path):
    write(bench, "truth", tmp_path / "v")
    next((tmp_path / "v").glob("*.mp4")).unlink()
    missing = score(bench, tmp_path / "v", tmp_path / "s")
    assert missing.exit_code == 2 and "1 of 4 videos are missing" in missing.output
    write(bench, "truth", tmp_path / "v")
    assert score(bench, tmp_path / "v", tmp_path / "s", "--metrics", "causal_order").exit_code == 0
    changed = score(bench, tmp_path / "v", tmp_path / "s", "--metrics", "causal_order,continuity")
    assert changed.exit_code == 2 and "other settings" in changed.output


def test_build_command_writes_the_documented_layout(tmp_path):
    result = runner.invoke(app, ["eval", "build-synthworld", "--split", "counterfactual", "--cases", "4", "--seed", "2",
                                 "--out", str(tmp_path), "--train-clips", "20"])
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "benchmark.jsonl").read_text().splitlines()[0])
    assert {"id", "image", "prompt", "position", "frames", "truth", "world"} <= set(row)
    assert json.loads((tmp_path / "report.json").read_text())["nn_image_distance"]["min"] >= 5.0
    bad = runner.invoke(app, ["eval", "build-synthworld", "--split", "paired", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "unknown split" in bad.output


def test_counterfactual_cases_sharing_an_image_are_bootstrapped_by_image(tmp_path):
    """Four prompts per image: `eval score` records each case's image and `eval report` resamples images."""
    bench = tmp_path / "bench"
    build_synthworld(bench, "counterfactual", 8, seed=4, train_clips=20, log=lambda m: None)
    write(bench, "static", tmp_path / "static")
    assert score(bench, tmp_path / "static", tmp_path / "s", "--metrics", "sharpness").exit_code == 0
    rows = [json.loads(line) for line in (tmp_path / "s" / "results.jsonl").read_text().splitlines()]
    assert len({row["image_key"] for row in rows}) == 2 and len(rows) == 8
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["sharpness"]["clusters"] == 2
    report = runner.invoke(app, ["eval", "report", str(tmp_path / "s"), "-o", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    assert "Intervals: clustered bootstrap over the cases' images, 2 images for 8 cases" in report.output
