"""SynthWorld-CoBSAT and `reasondiff thinkdiff bench`: the task table, the scoring, resume, the CLI on tiny models."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from reasondiff.mini.palette import parse_frame
from reasondiff.mini.thinkdiff import bench, tasks
from reasondiff.mini.thinkdiff.stills import SPACES, Still, caption, random_still, state_word
from reasondiff.mini.world import HELD_OUT_OBJECT_BANDS
from reasondiff.cli import app

runner = CliRunner()


def test_the_table_has_eight_tasks_over_the_four_attributes():
    names = [tasks.TABLE.tasks[t].name for t in tasks.TABLE.order]
    assert names == ["Room-I", "Object-I", "Place-I", "State-I", "Room-II", "Object-II", "Place-II", "State-II"]
    covered = {a for t in tasks.TABLE.tasks.values() for a in (t.x_space, t.theta_space)}
    assert covered == {"agent", "object", "room", "state"}


@pytest.mark.parametrize("task_id", [1, 4, 6, 7])
def test_demo_images_show_the_task_attributes_on_held_out_scenes(task_id):
    prompts = tasks.episodes(task_id, 4, 6, seed=3)
    task = tasks.TABLE.tasks[task_id]
    others = set()
    for p in prompts:
        assert len(p.texts) == 5 and len(p.images) == 4
        for d, image in enumerate(p.images):
            parsed = parse_frame(np.asarray(image))
            shown = {"agent": parsed.agent, "object": parsed.object, "room": parsed.room,
                     "state": None if parsed.object is None else
                     ("intact" if parsed.object_state == state_word(parsed.object, "intact") else "changed")}
            want = tasks.task_attributes(task, p.x_values[d], p.theta)
            assert {k: shown[k] for k in want} == want
            assert any(lo - 0.05 <= parsed.object_x <= hi + 0.05 for lo, hi in HELD_OUT_OBJECT_BANDS)
            others.add(tuple(shown[k] for k in SPACES if k not in want))
        assert tasks.target(p) == tasks.task_attributes(task, p.x_values[-1], p.theta)
    assert len(others) > 3  # the attributes outside the task vary from image to image
    assert tasks.episodes(task_id, 4, 6, seed=3)[2].texts == prompts[2].texts  # seeded


def test_captions_name_only_what_they_are_given():
    assert caption({"agent": "cat", "object": "vase", "room": "kitchen", "state": "changed"}) == \
        "a cat by the broken vase in the kitchen"
    assert caption({"agent": "dog", "room": "garden"}) == "a dog in the garden"
    assert caption({"object": "tower", "state": "intact"}) == "the standing tower"
    assert caption({}) == ""
    assert bench.mentioned("a cat by the fallen tower") == {"agent": "cat", "object": "tower", "room": None,
                                                            "state": "changed"}
    assert bench.mentioned("kitchen: garden: kitchen:")["room"] is None  # two rooms: not one answer


DEFAULTS = {k: v[0] for k, v in SPACES.items()}


class CaptionRenderer:
    """A decoder double that draws exactly what a text names (the first item of a space for the rest); any
    token prompt gives a blank grey picture."""

    def __init__(self):
        self.texts = []

    def text(self, text, seed):
        self.texts.append(text)
        named = {k: v or DEFAULTS[k] for k, v in bench.mentioned(text).items()}
        return Still(**named, object_x=0.33).render(64)

    def tokens(self, tokens, seed):
        return np.full((64, 64, 3), 128, dtype=np.uint8)


class TargetReasoner:
    """A VLM double that reasons perfectly: its text answer is the target's caption."""

    def __init__(self):
        self.calls = 0

    def answer(self, items):
        self.calls += 1
        texts = [x for x in items if isinstance(x, str)]
        picture = np.asarray(items[1])  # tasks share texts (one permutation file): the first image tells them apart
        prompt = next(p for p in self.prompts if p.texts == texts and np.array_equal(np.asarray(p.images[0]), picture))
        return torch.zeros(1, 3, 64), caption(tasks.target(prompt))

    def random_tokens(self, like, generator):
        return torch.randn(like.shape, generator=generator)


def expected_text_accuracy(prompts, text_of):
    """What CaptionRenderer + the palette judge must score: the named value, else the default, per attribute."""
    right = []
    for p in prompts:
        said = bench.mentioned(text_of(p))
        right.append(all((said[k] or DEFAULTS[k]) == v for k, v in tasks.target(p).items()))
    return right


def test_scores_are_the_judged_values_and_a_rerun_resumes(tmp_path):
    reasoner, decoder = TargetReasoner(), CaptionRenderer()
    prompts = [p for t in tasks.TABLE.order for p in tasks.episodes(t, 2, 5, seed=1)]
    reasoner.prompts = prompts
    summary = bench.run(2, 3, 1, tmp_path, reasoner, decoder, bench.palette_judge, progress=False)
    assert reasoner.calls == 8 * 3  # one VLM answer per episode, shared by thinkdiff, vlm_text and random_tokens
    assert summary["oracle"]["accuracy"] == 1.0 and summary["vlm_text"]["accuracy"] == 1.0
    assert summary["thinkdiff"]["accuracy"] == 0.0 and summary["random_tokens"]["accuracy"] == 0.0  # grey
    first3 = [p for p in prompts if p.index < 3]
    query = expected_text_accuracy(first3, lambda p: p.texts[-1])
    concat = expected_text_accuracy(first3, lambda p: "".join(p.texts))
    assert summary["query_only"]["accuracy"] == pytest.approx(np.mean(query))
    assert summary["raw_concat"]["accuracy"] == pytest.approx(np.mean(concat))
    assert 0 < np.mean(query) < 1  # a degenerate method is right only when the latent happens to be the default
    for row in summary.values():
        lo, hi = row["ci95"]
        assert lo <= row["accuracy"] <= hi
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    details = json.loads((tmp_path / "details.json").read_text())
    assert details["vlm_text_accuracy"]["accuracy"] == 1.0 and set(details["per_task"]["oracle"].values()) == {1.0}
    assert sorted(p.name for p in (tmp_path / "images" / "Room-I").iterdir())[:2] == ["0_oracle.png",
                                                                                     "0_query_only.png"]
    rows = (tmp_path / "cases.jsonl").read_text().splitlines()
    assert len(rows) == 8 * 3 * 6

    # a rerun with more cases does only the new episodes, and equals one uninterrupted run
    again = bench.run(2, 5, 1, tmp_path, reasoner, decoder, bench.palette_judge, progress=False)
    assert reasoner.calls == 8 * 5 and len((tmp_path / "cases.jsonl").read_text().splitlines()) == 8 * 5 * 6
    fresh_reasoner = TargetReasoner()
    fresh_reasoner.prompts = prompts
    fresh = bench.run(2, 5, 1, tmp_path / "fresh", fresh_reasoner, CaptionRenderer(), bench.palette_judge,
                      progress=False)
    assert again == fresh
    with pytest.raises(ValueError, match="unknown methods"):
        bench.run(2, 1, 1, tmp_path, reasoner, decoder, bench.palette_judge, methods=["magic"], progress=False)


def test_the_learned_judge_reads_held_out_stills_as_the_palette_does():
    judge = bench.scene_judge()
    rng = np.random.default_rng(5)
    stills = [random_still(rng) for _ in range(24)]
    assert all(judge(s.render()) == bench.palette_judge(s.render()) == s.attributes() for s in stills)


def test_bench_command_on_tiny_models_end_to_end(tmp_path):
    args = ["thinkdiff", "bench", "--vlm", "tiny", "--decoder", "tiny", "--judge", "palette", "--shots", "1", "--cases", "1",
            "--steps", "1", "--max-new-tokens", "3", "--seed", "2", "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "RANDOM" in result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = [json.loads(x) for x in (tmp_path / "cases.jsonl").read_text().splitlines()]
    assert len(rows) == 8 * 6 and set(summary) == set(bench.METHODS)
    for method, row in summary.items():
        mine = [r["correct"] for r in rows if r["method"] == method]
        assert row["accuracy"] == pytest.approx(np.mean(mine)) and len(mine) == 8
        assert row["ci95"][0] <= row["accuracy"] <= row["ci95"][1]
    assert summary["oracle"]["accuracy"] < 0.5  # an untrained decoder draws noise: the oracle row shows it
    assert all(r["vlm_text"] is not None for r in rows if r["method"] == "vlm_text")
    again = runner.invoke(app, args)  # resumes: nothing to redo, the same summary
    assert again.exit_code == 0 and len((tmp_path / "cases.jsonl").read_text().splitlines()) == 48
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


def test_bench_takes_a_judge_folder_for_another_vae(tmp_path):
    """A judge trained on another VAE's decodes is given as a folder; its reads are used:
    a judge with every weight zeroed reads each image alike (no agent, the first object, room and state)."""
    from reasondiff.mini.judge import SceneJudge

    folder = tmp_path / "judge"
    blind = SceneJudge.shipped()
    with torch.no_grad():
        for parameter in blind.parameters():
            parameter.zero_()
    blind.save_pretrained(folder)
    args = ["thinkdiff", "bench", "--vlm", "tiny", "--decoder", "tiny", "--judge", str(folder), "--shots", "1",
            "--cases", "1", "--steps", "1", "--max-new-tokens", "3", "--methods", "oracle", "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    rows = [json.loads(x) for x in (tmp_path / "o" / "cases.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    assert all(r["read"] == {"agent": None, "object": "vase", "room": "kitchen", "state": "intact"} for r in rows)


def test_bench_without_weights_says_what_is_missing(tmp_path):
    result = runner.invoke(app, ["thinkdiff", "bench", "--out", str(tmp_path), "--vlm", str(tmp_path / "no-vlm"),
                                 "--decoder", "tiny", "--aligner", str(tmp_path)])
    assert result.exit_code == 2 and "not found: --vlm" in result.output
    result = runner.invoke(app, ["thinkdiff", "bench", "--out", str(tmp_path), "--vlm", "tiny", "--decoder", "tiny",
                                 "--judge", "eyes"])
    assert result.exit_code == 2 and "--judge" in result.output


def test_the_contact_sheet_shows_each_episode_and_every_method_framed_by_the_judge(tmp_path):
    from reasondiff.mini.thinkdiff import figure

    reasoner = TargetReasoner()
    reasoner.prompts = [p for t in tasks.TABLE.order for p in tasks.episodes(t, 2, 1, seed=1)]
    bench.run(2, 1, 1, tmp_path, reasoner, CaptionRenderer(), bench.palette_judge, progress=False)
    sheet = np.asarray(figure.contact_sheet(tmp_path, shot=2, seed=1))
    cell, row = figure.CELL + 2 * figure.PAD, figure.CELL + 2 * figure.PAD + figure.TEXT
    assert sheet.shape == (8 * row, 9 * cell + 2 * figure.PAD, 3)  # 2 demos | query | 6 methods, per task
    x0 = 3 * cell + 2 * figure.PAD  # the first method: thinkdiff (grey tokens: wrong, red); oracle (right, green)
    oracle = x0 + bench.METHODS.index("oracle") * cell
    assert tuple(sheet[1, x0 + 1]) == (200, 40, 40) and tuple(sheet[1, oracle + 1]) == (40, 170, 60)
    demo = tasks.episodes(tasks.TABLE.order[0], 2, 1, seed=1)[0].images[0]
    assert np.array_equal(sheet[figure.PAD:figure.PAD + 64, figure.PAD:figure.PAD + 64], np.asarray(demo))
