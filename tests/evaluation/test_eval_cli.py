import importlib.util
import json
import random

import pytest
import typer
from typer.testing import CliRunner

from reasondiff.evaluation.cli import app as eval_app

root = typer.Typer()
root.add_typer(eval_app, name="eval")  # as `reasondiff` registers it
runner = CliRunner()
SMALL = ["--model", "tiny", "--clip", "tiny", "--frames", "5", "--height", "32", "--width", "32", "--steps", "1",
         "--guidance", "1.0", "--fps", "8"]


def invoke(*args):
    return runner.invoke(root, ["eval", *map(str, args)])


def test_run_resume_and_report(manifest, tmp_path):
    out = tmp_path / "run"
    args = ["run", "-m", manifest, "-o", out, *SMALL, "--modes", "reasondiff,wan", "--limit", "2"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "generated 4, skipped 0" in first.output
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted((r["case_id"], r["mode"]) for r in rows) == [("case0", "reasondiff"), ("case0", "wan"),
                                                              ("case1", "reasondiff"), ("case1", "wan")]
    assert all(set(r["metrics"]) == {"motion_smoothness", "dynamic_degree", "clip_text", "clip_image"} for r in rows)
    assert all((out / r["video"]).suffix == ".mp4" and (out / r["video"]).stat().st_size > 0 for r in rows)
    again = invoke(*args)
    assert again.exit_code == 0 and "generated 0, skipped 4" in again.output
    changed = invoke(*args[:-2], "--steps", "2")
    assert changed.exit_code == 2 and "other settings" in changed.output

    report = invoke("report", out, "-o", tmp_path / "report")
    assert report.exit_code == 0, report.output
    table = (tmp_path / "report" / "table.md").read_text()
    assert table.splitlines()[2].startswith("| Wan2.1 |") and table.splitlines()[3].startswith("| ReasonDiff |")
    assert (tmp_path / "report" / "ablation.png").stat().st_size > 0
    assert "Imaging Quality(↑)" in report.output and "Sharpness" not in report.output  # opt-in: not scored

    # a metric added afterwards from the saved videos: the report gains its column, the run still resumes
    rescored = invoke("rescore", out, "-m", manifest, "--metrics", "sharpness")
    assert rescored.exit_code == 0 and "scored 4 row(s)" in rescored.output, rescored.output
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert all(0 < row["metrics"]["sharpness"] <= 1 for row in rows)
    assert "Sharpness(↑)" in invoke("report", out, "-o", tmp_path / "report_s").output
    assert "generated 0, skipped 4" in invoke(*args, "--metrics", "sharpness,motion_smoothness,dynamic_degree,"
                                              "clip_text,clip_image").output
    bad = invoke("rescore", out, "-m", manifest, "--metrics", "sharpnes")
    assert bad.exit_code == 2 and "unknown metric(s) sharpnes" in bad.output

    # the study over this run: build it, answer through the store, and see User Rank in the report
    from reasondiff.evaluation.study import StudyStore, create_study

    db = tmp_path / "study.sqlite"
    create_study(db, [out], questions_per_participant=2)
    store = StudyStore(db, rng=random.Random(0))
    person = store.new_participant()
    for k in range(2):
        store.answer(person, k, [1 if m == "reasondiff" else 2 for m in store.page(person, k)["order"]])
    results = invoke("study-results", "--db", db)
    assert results.exit_code == 0 and results.output.splitlines()[0] == "ReasonDiff\t1.000 ± 0.000\t(n=2)"
    with_rank = invoke("report", out, "-o", tmp_path / "report2", "--study", db)
    assert with_rank.exit_code == 0, with_rank.output
    assert "**1.000 ± 0.000** |" in (tmp_path / "report2" / "table.md").read_text().splitlines()[3]


@pytest.mark.parametrize("extra, message", [
    (["--modes", "sora"], "unknown mode 'sora'"),
    (["--modes", "rewrite"], "'rewrite' needs a narrator"),
    (["--metrics", "fvd"], "unknown metric(s) fvd"),
    (["--frames", "6"], "not of the form 4k+1"),
    (["--metrics", "dynamic_degree", "--flow", "raft"], "needs torchvision"),
    (["--modes", "reasondiff,wan", "--label", "no_aux_loss"], "a label names one method"),
])
def test_run_errors_are_one_line_with_exit_code_2(manifest, tmp_path, extra, message):
    result = invoke("run", "-m", manifest, "-o", tmp_path / "run", *SMALL, *extra)
    assert result.exit_code == 2
    assert message in result.output and result.output.startswith("error: ")


@pytest.mark.skipif(importlib.util.find_spec("pyiqa") is not None, reason="pyiqa is installed")
def test_imaging_quality_without_pyiqa_says_how_to_install(manifest, tmp_path):
    result = invoke("run", "-m", manifest, "-o", tmp_path / "run", *SMALL, "--metrics", "imaging_quality")
    assert result.exit_code == 2 and "pip install pyiqa" in result.output


def test_missing_inputs(tmp_path):
    assert "manifest not found" in invoke("run", "-m", tmp_path / "none.jsonl", *SMALL).output
    assert "no results found" in invoke("report", tmp_path).output
    study = invoke("study", "--db", tmp_path / "new.sqlite")
    assert study.exit_code == 2 and "give the run folders" in study.output
