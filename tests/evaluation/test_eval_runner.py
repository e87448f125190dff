import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fakes import VASE_STORY, ScriptedNarrator
from helpers import reasondiff_pipeline
from reasondiff.evaluation import GenerationSettings, read_manifest, rescore_run, run_benchmark
from reasondiff.evaluation.dynamic_degree import DynamicDegree
from reasondiff.evaluation.imaging_quality import ImagingQuality
from reasondiff.evaluation.metrics import ClipImage, ClipText, FramesOnly, WithFps, WithImage
from reasondiff.evaluation.motion_smoothness import MotionSmoothness
from reasondiff.evaluation.sharpness import Sharpness
from reasondiff.evaluation.frame_format import read_video
from reasondiff.media import load_image
from reasondiff.pipelines import MODES
from reasondiff.narrator.schema import Narration

SMALL = GenerationSettings(model="tiny", num_frames=5, height=32, width=32, steps=1, guidance_scale=1.0, fps=8)
RANGES = {"imaging_quality": (0, 1), "motion_smoothness": (0, 1), "dynamic_degree": (0, 1), "clip_text": (-1, 1),
          "clip_image": (-1, 1)}


def tiny_quality():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 1), torch.nn.Sigmoid()).eval()
    return ImagingQuality(lambda x: 100 * net(x)[:, 0])


def all_metrics(clip_scorer):
    return [FramesOnly(tiny_quality()), FramesOnly(MotionSmoothness("farneback")), WithFps(DynamicDegree("farneback")),
            ClipText(clip_scorer), ClipImage(clip_scorer)]


class FakePipeline:
    """Called like ReasonDiffPipeline (the runner reaches it through `reasondiff.generate`): the keyframe call when
    a script is rendered, the plain one otherwise; frames depend on the generator only, so reruns are comparable."""

    config = SimpleNamespace(expand_timesteps=False)

    def __init__(self, fail_at=None):
        self.calls, self.fail_at = [], fail_at

    def check_inputs(self, *args, **kwargs):
        pass

    def check_alignformer(self):
        pass

    def __call__(self, image, prompt, num_frames=5, height=32, width=32, generator=None, frame_prompts=None,
                 image_frame_index=None, enhanced_latents=True, **kwargs):
        narration = None
        if image_frame_index is not None:
            narration = Narration(position=image_frame_index[0] + 1, descriptions=frame_prompts[0])
        mode = "wan" if narration is None else "reasondiff" if enhanced_latents else "no_enhanced_latents"
        self.calls.append(dict(prompt=prompt, narration=narration, mode=mode, seed=generator.initial_seed()))
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise RuntimeError("simulated crash")
        return SimpleNamespace(frames=torch.rand((1, num_frames, height, width, 3), generator=generator).numpy())


def rows_of(folder):
    return [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]


def test_every_mode_of_every_case_is_generated_and_scored(manifest, tmp_path, clip_scorer):
    cases = read_manifest(manifest)
    narrator = ScriptedNarrator(narration=VASE_STORY.resample(5), rewritten="a cat breaks the vase")
    pipe = reasondiff_pipeline()
    result = run_benchmark(cases, MODES, tmp_path / "run", pipeline=pipe, metrics=all_metrics(clip_scorer),
                           settings=SMALL, narrator=narrator)
    rows = rows_of(tmp_path / "run")
    assert result.generated == 20 and result.skipped == 0
    assert sorted((r["case_id"], r["mode"]) for r in rows) == sorted((c.id, m) for c in cases for m in MODES)
    for row in rows:
        assert set(row["metrics"]) == set(RANGES)
        for name, value in row["metrics"].items():
            low, high = RANGES[name]
            assert math.isfinite(value) and low <= value <= high, (name, value)
        assert (tmp_path / "run" / row["video"]).is_file()
        assert (row["num_frames"], row["height"], row["width"]) == (5, 32, 32)
    by_mode = {m: [r for r in rows if r["mode"] == m] for m in MODES}
    assert all(r["prompt_used"] == "a cat breaks the vase" for r in by_mode["rewrite"])
    assert all(r["position_used"] == VASE_STORY.resample(5).position for r in by_mode["reasondiff"])
    assert all(r["narration_source"] == "narrator" for r in by_mode["no_multi_prompt"])
    # one seed per case, shared by its modes; different cases, different seeds
    seeds = {r["case_id"]: {x["seed"] for x in rows if x["case_id"] == r["case_id"]} for r in rows}
    assert all(len(s) == 1 for s in seeds.values()) and len({next(iter(s)) for s in seeds.values()}) == 4
    summary = json.loads(result.summary.read_text())
    assert set(summary) == set(MODES)
    assert summary["wan"]["clip_image"]["n"] == 4
    assert summary["wan"]["clip_image"]["mean"] == pytest.approx(np.mean([r["metrics"]["clip_image"]
                                                                          for r in by_mode["wan"]]))


def test_without_a_narrator_the_ground_truth_narration_is_used(manifest, tmp_path, clip_scorer):
    cases = read_manifest(manifest)
    pipe = FakePipeline()
    run_benchmark(cases, ["reasondiff", "wan"], tmp_path / "run", pipeline=pipe,
                  metrics=[ClipText(clip_scorer)], settings=SMALL)
    told = [c for c in pipe.calls if c["mode"] == "reasondiff"]
    # case0: image is real frame 1 of 4; case1: frame 4 of 4 -> frame 5 of 5 after resampling
    assert [c["narration"].position for c in told] == [1, 5, 1, 5]
    assert told[0]["narration"].descriptions == [cases[0].captions[i] for i in (0, 1, 2, 2, 3)]
    assert all(c["narration"] is None for c in pipe.calls if c["mode"] == "wan")
    rows = rows_of(tmp_path / "run")
    assert {r["narration_source"] for r in rows if r["mode"] == "reasondiff"} == {"ground_truth"}


def test_an_interrupted_run_resumes_to_the_same_rows(manifest, tmp_path, clip_scorer):
    cases, modes = read_manifest(manifest), ["reasondiff", "wan"]
    metrics = [FramesOnly(MotionSmoothness("linear")), ClipImage(clip_scorer)]
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_benchmark(cases, modes, tmp_path / "a", pipeline=FakePipeline(fail_at=4), metrics=metrics, settings=SMALL)
    assert len(rows_of(tmp_path / "a")) == 3
    second = FakePipeline()
    result = run_benchmark(cases, modes, tmp_path / "a", pipeline=second, metrics=metrics, settings=SMALL)
    assert (result.generated, result.skipped, len(second.calls)) == (5, 3, 5)
    run_benchmark(cases, modes, tmp_path / "b", pipeline=FakePipeline(), metrics=metrics, settings=SMALL)

    def key(rows):
        return sorted((r["case_id"], r["mode"], r["seed"], r["metrics"]["motion_smoothness"], r["metrics"]["clip_image"])
                      for r in rows)

    assert key(rows_of(tmp_path / "a")) == key(rows_of(tmp_path / "b"))
    # a finished run does not even load the model
    loads = []
    again = run_benchmark(cases, modes, tmp_path / "a", pipeline_factory=lambda: loads.append(1), metrics=metrics,
                          settings=SMALL)
    assert (again.generated, again.skipped, loads) == (0, 8, [])


def test_a_torn_last_line_is_regenerated(manifest, tmp_path, clip_scorer):
    cases, metrics = read_manifest(manifest)[:2], [ClipImage(clip_scorer)]
    run_benchmark(cases, ["wan"], tmp_path / "run", pipeline=FakePipeline(), metrics=metrics, settings=SMALL)
    results = tmp_path / "run" / "results.jsonl"
    results.write_bytes(results.read_bytes()[:-25])  # a crash in the middle of writing the second row
    pipe = FakePipeline()
    result = run_benchmark(cases, ["wan"], tmp_path / "run", pipeline=pipe, metrics=metrics, settings=SMALL)
    assert result.generated == 1 and [c["seed"] for c in pipe.calls] == [rows_of(tmp_path / "run")[1]["seed"]]
    assert [r["case_id"] for r in rows_of(tmp_path / "run")] == ["case0", "case1"]


def test_refusals_name_the_problem(manifest, tmp_path, clip_scorer):
    cases, metrics = read_manifest(manifest), [ClipImage(clip_scorer)]
    run_benchmark(cases[:1], ["wan"], tmp_path / "run", pipeline=FakePipeline(), metrics=metrics, settings=SMALL)
    other = GenerationSettings(**{**SMALL.__dict__, "steps": 3})
    with pytest.raises(ValueError, match=r"other settings \(steps: 1 -> 3\)"):
        run_benchmark(cases, ["wan"], tmp_path / "run", pipeline=FakePipeline(), metrics=metrics, settings=other)
    with pytest.raises(ValueError, match=r"other settings \(metrics: \['clip_image'\] -> \['clip_text'\]\)"):
        run_benchmark(cases, ["wan"], tmp_path / "run", pipeline=FakePipeline(), metrics=[ClipText(clip_scorer)],
                      settings=SMALL)
    with pytest.raises(ValueError, match="'rewrite' needs a narrator"):
        run_benchmark(cases, ["rewrite"], tmp_path / "x", pipeline=FakePipeline(), metrics=metrics, settings=SMALL)
    with pytest.raises(ValueError, match="unknown mode"):
        run_benchmark(cases, ["sora"], tmp_path / "x", pipeline=FakePipeline(), metrics=metrics, settings=SMALL)
    bare = [c.__class__(c.id, c.image, c.prompt) for c in cases]  # no ground truth
    pipe = FakePipeline()
    with pytest.raises(ValueError, match="no ground-truth 'position' and 'captions'.*--narrator"):
        run_benchmark(bare, ["reasondiff"], tmp_path / "y", pipeline=pipe, metrics=metrics, settings=SMALL)
    assert pipe.calls == []  # refused before generating anything


def test_manifest_checks(tmp_path, manifest):
    cases = read_manifest(manifest)
    assert [c.id for c in cases] == ["case0", "case1", "case2", "case3"]
    assert cases[1].position == 4 and cases[1].extra == {"image_end": "last"} and cases[0].image.is_file()
    bad = tmp_path / "bad.jsonl"
    for text, message in [
        ('{"id": "a", "image": "nope.png", "prompt": "p"}', r"bad.jsonl:1: image not found"),
        ('{"id": "a", "prompt": "p"}', "missing field 'image'"),
        (f'{{"id": "a", "image": "{cases[0].image}", "prompt": "p", "position": 5, "captions": ["x"]}}',
         "beyond the 1 captioned frames"),
        (f'{{"id": "a", "image": "{cases[0].image}", "prompt": " "}}', "non-empty string"),
        ("not json", "not valid JSON"),
    ]:
        bad.write_text(text + "\n")
        with pytest.raises(ValueError, match=message):
            read_manifest(bad)


def test_a_labelled_run_sits_beside_the_full_model_in_the_report(manifest, tmp_path, clip_scorer):
    """The paper's w/o Aux. loss is another checkpoint: its run is labelled, and the report puts it beside the others."""
    from reasondiff.evaluation.report import markdown_table, summarise
    from reasondiff.evaluation.runner import read_results

    cases, metrics = read_manifest(manifest)[:2], [ClipImage(clip_scorer)]
    run_benchmark(cases, ["reasondiff", "wan"], tmp_path / "full", pipeline=FakePipeline(), metrics=metrics,
                  settings=SMALL)
    labelled = GenerationSettings(**{**SMALL.__dict__, "label": "no_aux_loss"})
    run_benchmark(cases, ["reasondiff"], tmp_path / "noaux", pipeline=FakePipeline(), metrics=metrics,
                  settings=labelled)
    assert {r["method"] for r in rows_of(tmp_path / "noaux")} == {"no_aux_loss"}
    summary = summarise(read_results(tmp_path / "full") + read_results(tmp_path / "noaux"))
    assert list(summary) == ["reasondiff", "wan", "no_aux_loss"]
    names = [line.split(" | ")[0] for line in markdown_table(summary).splitlines()[2:]]
    assert names == ["| Wan2.1", "| w/o Aux. loss", "| ReasonDiff"]
    with pytest.raises(ValueError, match="a label names one method"):
        run_benchmark(cases, ["reasondiff", "wan"], tmp_path / "x", pipeline=FakePipeline(), metrics=metrics,
                      settings=labelled)


class Flaky:
    """A metric that fails on its `fail_at`-th call (an interrupted rescore)."""

    name = "sharpness"

    def __init__(self, fail_at=None):
        self.calls, self.fail_at, self.inner = 0, fail_at, WithImage(Sharpness())

    def score(self, sample):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("simulated crash")
        return self.inner.score(sample)


def test_rescore_adds_a_metric_from_the_saved_videos_and_resumes(manifest, tmp_path):
    cases, modes, run = read_manifest(manifest), ["reasondiff", "wan"], tmp_path / "run"
    motion = [FramesOnly(MotionSmoothness("linear"))]
    run_benchmark(cases, modes, run, pipeline=FakePipeline(), metrics=motion, settings=SMALL)
    before = {(r["case_id"], r["mode"]): r["metrics"]["motion_smoothness"] for r in rows_of(run)}

    with pytest.raises(RuntimeError, match="simulated crash"):
        rescore_run(run, cases, [Flaky(fail_at=4)], save_every=2)
    assert sum("sharpness" in r["metrics"] for r in rows_of(run)) == 2  # saved every 2 rows, nothing torn
    assert rescore_run(run, cases, [Flaky()]) == 6
    assert rescore_run(run, cases, [Flaky(fail_at=1)]) == 0  # every row done: the metric is not even called

    by_id = {case.id: case for case in cases}
    for row in rows_of(run):
        assert row["metrics"]["motion_smoothness"] == before[(row["case_id"], row["mode"])]
        expected = Sharpness()(read_video(run / row["video"]), load_image(by_id[row["case_id"]].image))
        assert row["metrics"]["sharpness"] == pytest.approx(expected, abs=1e-12)
        assert 0 < row["metrics"]["sharpness"] <= 1
    assert json.loads((run / "run.json").read_text())["metrics"] == ["sharpness", "motion_smoothness"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["wan"]["sharpness"]["n"] == 4
    # the run folder now resumes with both metrics, in the order build_metrics gives them
    again = run_benchmark(cases, modes, run, pipeline_factory=lambda: pytest.fail("loaded a model"),
                          metrics=[WithImage(Sharpness()), *motion], settings=SMALL)
    assert (again.generated, again.skipped) == (0, 8)
    with pytest.raises(ValueError, match="not in the manifest"):
        rescore_run(run, cases[:1], [ClipImage(None)])

    # scores a row holds are never replaced: only the missing metric is computed
    class Wrong:
        name = "motion_smoothness"

        def score(self, sample):
            raise AssertionError("recomputed a held metric")

    class Constant:
        name = "clip_image"

        def score(self, sample):
            return 0.25

    assert rescore_run(run, cases, [Wrong(), Constant()]) == 8
    rows = rows_of(run)
    assert all(r["metrics"]["clip_image"] == 0.25 for r in rows)
    assert all(r["metrics"]["motion_smoothness"] == before[(r["case_id"], r["mode"])] for r in rows)
    (run / "run.json").unlink()
    with pytest.raises(ValueError, match="no run.json"):
        rescore_run(run, cases, [Constant()])
