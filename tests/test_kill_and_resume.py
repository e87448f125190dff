"""Fault injection: long jobs are killed for real (SIGKILL, no cleanup) at seeded kill points, then run again;
the result must be what one uninterrupted run gives, and a reader must never see outputs of two runs mixed.

Kill points are `reasondiff.faults.checkpoint()` calls, placed after each durable step of a job; with
`killing.kill_at(n)` the n-th one sends the process SIGKILL. Each job here runs in a spawned child (never a
forked one: see tests/killing.py), so each job is a picklable `cli(...)` call, and which points
are tried is drawn from a seeded generator, so a failure reproduces. The jobs: `generate`, `narrate`,
`data sample`, `data caption`, `data cache`, `thinkdiff extract` and `thinkdiff train`; `eval run` has no kill
points, so it is killed at a moment instead (once a seeded number of result rows is on disk). `train` (ReasonDiff
itself) is killed for real in tests/training.
"""

import functools
import json
import random
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from reasondiff.cli import app
from killing import run_killed, spawn_and_kill_when
from reasondiff.mini.world import EventScript

runner = CliRunner()
SEED = 22


def kill_points(count: int, among: int, salt: str) -> list[int]:
    """`count` distinct kill points in 1..among, drawn from a generator seeded by SEED and the job's name."""
    return sorted(random.Random(f"{SEED}:{salt}").sample(range(1, among + 1), min(count, among)))


def _invoke(args: tuple) -> None:
    result = runner.invoke(app, ["--quiet", *args])
    assert result.exit_code == 0, result.output


def cli(*args):
    """`reasondiff --quiet ARGS` as a job: run it now with `cli(...)()`, or hand it to a spawned child."""
    return functools.partial(_invoke, args)


# --------------------------------------------------------------------------------------------------- generate

def generation_of(out: Path) -> dict:
    """What a reader finds at OUT: each of the three files, or None where it is missing."""
    script = out.with_suffix(".narration.json")
    return {
        "video": iio.imread(out) if out.exists() else None,
        "script": json.loads(script.read_text()) if script.exists() else None,
        "sheet": out.with_suffix(".png").read_bytes() if out.with_suffix(".png").exists() else None,
    }


def same_run(found: dict, run: dict) -> dict:
    """For each file present, whether it is `run`'s (scripts compared without the timing)."""
    def script(s):
        return {**s, "metadata": {**s["metadata"], "generation": {**s["metadata"]["generation"], "seconds": 0}}}
    checks = {
        "video": lambda a, b: a.shape == b.shape and np.array_equal(a, b),
        "script": lambda a, b: script(a) == script(b),
        "sheet": lambda a, b: a == b,
    }
    return {key: checks[key](found[key], run[key]) for key in found if found[key] is not None}


def test_a_killed_generate_never_leaves_a_mix_and_its_rerun_is_whole(tmp_path):
    fast = ["--model", "tiny", "--steps", "1"]
    reference = tmp_path / "reference"
    for seed in (1, 0):
        cli("generate", *fast, "--seed", str(seed), "-o", str(reference / f"seed{seed}.mp4"))()
    old, new = generation_of(reference / "seed1.mp4"), generation_of(reference / "seed0.mp4")
    assert not np.array_equal(old["video"], new["video"])

    # kill points of write_together for three files: 3 written, 3 old ones moved aside, 3 renamed
    for point in kill_points(3, 9, "generate"):
        out = tmp_path / f"k{point}" / "clip.mp4"
        cli("generate", *fast, "--seed", "1", "-o", str(out))()  # the previous run's outputs are in place
        run_killed(cli("generate", *fast, "--seed", "0", "-o", str(out)), point)
        found = generation_of(out)
        olds, news = same_run(found, old), same_run(found, new)
        assert all(olds.values()) or all(news.values()), (point, olds, news)  # one run's files, never both
        cli("generate", *fast, "--seed", "0", "-o", str(out))()
        assert all(same_run(generation_of(out), new).values()) and len(same_run(generation_of(out), new)) == 3
        assert not list(out.parent.glob(".partial-*"))


# ---------------------------------------------------------------------------------------------------- narrate

def test_a_killed_narrate_leaves_the_old_script_or_none_and_its_rerun_is_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONDIFF_CACHE", str(tmp_path / "cache"))
    frame = tmp_path / "frame.png"
    Image.fromarray(EventScript("dog", "glass", "garden").render(16)).save(frame)
    base = ["narrate", "-i", str(frame), "--narrator", "synthworld:"]
    cli(*base, "-p", "a cat plays", "-o", str(tmp_path / "old.json"))()
    cli(*base, "-p", "a dog plays", "-o", str(tmp_path / "new.json"))()
    old, new = (tmp_path / "old.json").read_text(), (tmp_path / "new.json").read_text()
    for point in kill_points(3, 3, "narrate"):  # written, old removed, renamed
        out = tmp_path / f"k{point}.json"
        out.write_text(old)
        run_killed(cli(*base, "-p", "a dog plays", "-o", str(out)), point)
        assert not out.exists() or out.read_text() in (old, new)
        cli(*base, "-p", "a dog plays", "-o", str(out))()
        assert out.read_text() == new


# ------------------------------------------------------------------------------------- data sample, caption, cache

@pytest.fixture(scope="module")
def world_videos(tmp_path_factory):
    """Five short SynthWorld videos as .mp4 files, the input of `data sample`."""
    folder = tmp_path_factory.mktemp("world") / "videos"
    folder.mkdir()
    for i, (agent, obj) in enumerate([("cat", "vase"), ("dog", "glass"), ("pig", "tower"), ("ball", "window"),
                                      ("cat", "glass")]):
        script = EventScript(agent, obj, "kitchen", num_frames=17)
        iio.imwrite(folder / f"v{i}.mp4", np.stack([script.render(t, 32) for t in range(17)]), fps=8,
                    macro_block_size=1)
    return folder


def tree(folder: Path) -> dict:
    """Every file of a job's output folder (temporaries excluded), by name."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith(".tmp")}


def test_killed_data_jobs_resume_to_what_one_run_gives(world_videos, tmp_path, monkeypatch):
    monkeypatch.setenv("REASONDIFF_CACHE", str(tmp_path / "narrator-cache"))
    sample = ["data", "sample", str(world_videos), None, "--frames", "9", "--size", "16", "--shard-size", "2",
              "--no-progress"]
    caption = ["data", "caption", None, "--narrator", "synthworld:", "--batch-size", "4", "--no-progress"]
    cache = ["data", "cache", None, None, "--model", "tiny", "--anchors", "2", "--shard-size", "2",
             "--max-sequence-length", "16", "--no-progress"]

    def with_paths(args, *paths):
        filled = iter(paths)
        return [next(filled) if a is None else a for a in args]

    straight = tmp_path / "straight"
    cli(*with_paths(sample, str(straight / "clips")))()
    cli(*with_paths(caption, str(straight / "clips")))()
    cli(*with_paths(cache, str(straight / "clips"), str(straight / "cache")))()
    expected_clips, expected_cache = tree(straight / "clips"), tree(straight / "cache")

    # sample: a kill point after each video and between a shard's write and its manifest rows (8 in all)
    for point in kill_points(2, 8, "sample"):
        clips = tmp_path / f"sample{point}"
        run_killed(cli(*with_paths(sample, str(clips))), point)
        cli(*with_paths(sample, str(clips)))()
        cli(*with_paths(caption, str(clips)))()
        assert tree(clips) == expected_clips, point
    # caption: a kill point after each batch of 4 frames (5 clips x 9 frames: 11 full batches)
    for point in kill_points(2, 11, "caption"):
        clips = tmp_path / f"caption{point}"
        cli(*with_paths(sample, str(clips)))()
        run_killed(cli(*with_paths(caption, str(clips))), point)
        cli(*with_paths(caption, str(clips)))()
        assert tree(clips) == expected_clips, point
    # cache: four kill points per shard of 2 clips (3 shards: 12)
    for point in kill_points(3, 12, "cache"):
        out = tmp_path / f"cache{point}"
        run_killed(cli(*with_paths(cache, str(straight / "clips"), str(out))), point)
        cli(*with_paths(cache, str(straight / "clips"), str(out)))()
        got = tree(out)
        assert got.keys() == expected_cache.keys(), point
        for name in got:
            if name.endswith(".safetensors"):
                from safetensors.numpy import load
                a, b = load(got[name]), load(expected_cache[name])
                assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), (point, name)
            else:
                assert got[name] == expected_cache[name], (point, name)


# -------------------------------------------------------------------------------------------------------- eval run

def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def kill_after_rows(job, results: Path, rows: int) -> None:
    """SIGKILL `job` as soon as `results` holds `rows` rows (the eval runner has no kill points of its own: this is
    a kill at a moment, like a user's Ctrl-\\ or the OOM killer)."""
    spawn_and_kill_when(job, lambda: len(rows_of(results)) >= rows)


def test_a_killed_eval_run_resumes_to_the_rows_of_one_run(tmp_path):
    folder = tmp_path / "bench"
    (folder / "images").mkdir(parents=True)
    cases = []
    for i, (agent, obj) in enumerate([("cat", "vase"), ("dog", "glass"), ("pig", "tower"), ("ball", "window")]):
        script = EventScript(agent, obj, "kitchen", num_frames=5, enter=1, contact=2)
        Image.fromarray(script.render(4, 32)).save(folder / "images" / f"c{i}.png")
        cases.append({"id": f"c{i}", "image": f"images/c{i}.png", "prompt": f"a {agent} plays", "position": 5,
                      "captions": script.captions(), "image_end": "last"})
    manifest = folder / "benchmark.jsonl"
    manifest.write_text("".join(json.dumps(case) + "\n" for case in cases))
    run = ["eval", "run", "-m", str(manifest), "--model", "tiny", "--clip", "tiny", "--frames", "5", "--height", "32",
           "--width", "32", "--steps", "1", "--guidance", "1.0", "--modes", "wan", "--metrics", "motion_smoothness"]

    def key(rows):
        return sorted((r["case_id"], r["mode"], r["seed"], r["metrics"]["motion_smoothness"]) for r in rows)

    cli(*run, "-o", str(tmp_path / "straight"))()
    expected = key(rows_of(tmp_path / "straight" / "results.jsonl"))
    assert len(expected) == 4
    for rows in kill_points(2, 3, "eval"):
        out = tmp_path / f"killed{rows}"
        kill_after_rows(cli(*run, "-o", str(out)), out / "results.jsonl", rows)
        assert len(rows_of(out / "results.jsonl")) < 4
        cli(*run, "-o", str(out))()
        assert key(rows_of(out / "results.jsonl")) == expected, rows


# ------------------------------------------------------------------------------------ thinkdiff extract and train

def test_killed_thinkdiff_extract_and_train_resume_to_one_runs_features_and_weights(tmp_path):
    import thinkdiff_toy as toy
    from safetensors.numpy import load_file

    rows = []
    for i, caption in enumerate(toy.toy_captions(6, seed=9)):
        toy.toy_image(caption, 56).save(tmp_path / f"{i}.png")
        rows.append({"image": f"{i}.png", "caption": caption})
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows))

    def extract(out):
        return cli("thinkdiff", "extract", "--data", str(tmp_path / "data.jsonl"), "--out", str(out),
                   "--max-new-tokens", "4", "--shard-size", "2", "--dtype", "float32")

    def train(features, out):
        return cli("thinkdiff", "train", "--features", str(features), "--out", str(out), "--steps", "4",
                   "--batch-size", "2", "--save-every", "1")

    def tensors(folder, pattern):
        return {p.relative_to(folder).as_posix(): load_file(str(p)) for p in sorted(folder.glob(pattern))}

    def same(a, b):
        assert a.keys() == b.keys()
        for name in a:
            assert a[name].keys() == b[name].keys() and all(np.array_equal(a[name][k], b[name][k]) for k in a[name])

    extract(tmp_path / "feats")()
    train(tmp_path / "feats", tmp_path / "run")()
    expected_features = tensors(tmp_path / "feats", "shard-*.safetensors")
    expected_aligner = tensors(tmp_path / "run", "aligner/*.safetensors")
    for point in kill_points(2, 6, "extract"):  # two kill points per shard of 2 samples
        out = tmp_path / f"feats{point}"
        run_killed(extract(out), point)
        extract(out)()
        same(tensors(out, "shard-*.safetensors"), expected_features)
        assert json.loads((out / "index.json").read_text()) == json.loads((tmp_path / "feats" / "index.json").read_text())
    for point in kill_points(2, 5, "train"):  # after each of 4 checkpoints, and after the final aligner
        out = tmp_path / f"run{point}"
        run_killed(train(tmp_path / "feats", out), point)
        train(tmp_path / "feats", out)()
        same(tensors(out, "aligner/*.safetensors"), expected_aligner)
        assert (out / "losses.json").read_text() == (tmp_path / "run" / "losses.json").read_text()
