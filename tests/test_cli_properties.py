"""Whatever options a user types, a command ends with exit 0, or exit 2 and one `error:` line: never a traceback.

Hypothesis draws option values (numbers of any sign and size, non-finite floats, words, devices this machine
lacks, paths that cannot be written or are folders, files that are not images, broken scripts, configs and
videos, narrator specs that do not exist) for `generate`, `narrate`, `thinkdiff generate`, `eval score`, `train`
and the `data` commands. Loading a model (or starting a training) is replaced by a stop that exits 2 like a
model that cannot load, so an example that passes every check costs milliseconds, not a generation.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from reasondiff.cli import app
from reasondiff.example import bundled_example

runner = CliRunner()
EXAMPLES = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

numbers = st.one_of(st.integers(-10, 300), st.integers(-2**40, 2**40), st.sampled_from([0, 1, 16, 17, 81, 1001]))
words = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=24)
prompts = st.one_of(words, st.sampled_from(["a cat plays in the room", "a storm hits the house", " "]))
narrators = st.one_of(st.none(), words, st.sampled_from(
    ["synthworld:", "openai:gpt-4o", "nonsense", "transformers:/no/such/model", "openai:m@http://127.0.0.1:9/v1"]))
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.0, -1.0, 1.0, 8.0, 1e308]))
huge = st.one_of(numbers, st.sampled_from([2**63, 2**64 - 1, 2**64, 2**70, -2**63 - 1, -2**70]))
devices = st.sampled_from(["auto", "cpu", "cpu:0", "cuda", "cuda:7", "meta", "mps", "xpu", "bogus", "", "CPU"])


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Paths to draw from, a model loader that stops, and no API key or narrator from the environment."""
    import reasondiff.pipelines.loading as loading

    def stop(*args, **kwargs):
        raise ValueError("stopped before loading (test)")

    monkeypatch.setattr(loading, "load_pipeline", stop)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "REASONDIFF_NARRATOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REASONDIFF_CACHE", str(tmp_path / "cache"))
    (tmp_path / "a_file").write_text("not an image")
    scripts = {"good": {"position": 3, "descriptions": ["a cat"] * 17},
               "true": {"position": True, "descriptions": ["a"]}, "far": {"position": 40, "descriptions": ["a"] * 17},
               "numbers": {"position": 1, "descriptions": [1, 2]}}
    for name, script in scripts.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(script))
    return {
        "scripts": [str(tmp_path / f"{name}.json") for name in scripts] + [str(tmp_path), str(tmp_path / "a_file")],
        "images": [str(bundled_example().image_path), str(tmp_path / "a_file"), str(tmp_path / "missing.png")],
        "outs": [str(tmp_path / "o.mp4"), str(tmp_path / "o.avi"), str(tmp_path / "a_file" / "o.mp4"),
                 "/proc/no-such-folder/o.mp4", str(tmp_path)],
    }


def option(name, values):
    return st.one_of(st.just([]), values.map(lambda v: [name, str(v)]))


def assert_one_clear_line(result, args):
    assert result.exit_code in (0, 2), (args, result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert "Traceback" not in result.output, args
    if result.exit_code == 2:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, (args, result.stderr)
        assert result.stderr.strip().splitlines()[-1] == errors[0], (args, result.stderr)  # no dump after it


@EXAMPLES
@given(data=st.data())
def test_generate_with_random_options(places, data):
    args = ["generate"]
    for name, values in [("--frames", numbers), ("--height", numbers), ("--width", numbers), ("--steps", numbers),
                         ("--mode", st.one_of(words, st.sampled_from(["wan", "rewrite", "reasondiff"]))),
                         ("--prompt", prompts), ("--narrator", narrators), ("--timeout", numbers),
                         ("--image", st.sampled_from(places["images"])), ("-o", st.sampled_from(places["outs"])),
                         ("--seed", huge), ("--fps", huge), ("--guidance", floats), ("--device", devices),
                         ("--dtype", st.sampled_from(["auto", "float32", "float8", ""])),
                         ("-n", st.sampled_from(places["scripts"]))]:
        args += data.draw(option(name, values))
    assert_one_clear_line(runner.invoke(app, args), args)


@EXAMPLES
@given(data=st.data())
def test_generate_with_values_from_the_issue_rows(places, data):
    """The options of issue 33's rows on an otherwise good command, so that each one reaches its check (with
    every option drawn, most examples stop at the first bad size)."""
    rows = {"--seed": huge, "--fps": huge, "--guidance": floats, "--device": devices, "-n": st.sampled_from(
        places["scripts"]), "--dtype": st.sampled_from(["auto", "float32", "float8", ""]), "--steps": huge}
    names = data.draw(st.lists(st.sampled_from(sorted(rows)), min_size=1, max_size=2, unique=True))
    args = ["generate", "-o", places["outs"][0], *(a for n in names for a in [n, str(data.draw(rows[n]))])]
    assert_one_clear_line(runner.invoke(app, args), args)


@EXAMPLES
@given(data=st.data())
def test_narrate_with_random_options(places, data):
    args = ["narrate", "-i", data.draw(st.sampled_from(places["images"])), "-p", data.draw(prompts),
            "--narrator", data.draw(st.sampled_from(["synthworld:", "openai:gpt-4o", "nonsense", "transformers:/no"]))]
    for name, values in [("--frames", numbers), ("--max-attempts", numbers), ("--timeout", numbers),
                         ("-o", st.sampled_from([p.replace(".mp4", ".json") for p in places["outs"]]))]:
        args += data.draw(option(name, values))
    assert_one_clear_line(runner.invoke(app, args), args)


@EXAMPLES
@given(data=st.data())
def test_option_parsing_errors_are_one_line_too(places, data):
    command = data.draw(st.sampled_from([["generate"], ["narrate"], ["eval", "run"], ["data", "sample"], ["demo"]]))
    name = data.draw(st.sampled_from(["--frames", "--steps", "--timeout", "--port", "--no-such-option"]))
    args = [*command, name, data.draw(st.one_of(words, numbers.map(str)))]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (args, result.output)  # nothing here can succeed: a bad value or a missing one
    assert_one_clear_line(result, args)


# ------------------------------------------------------------------ issue 33: thinkdiff, eval score, train, data

def stop_loading(*args, **kwargs):
    """In place of a model load: one line and exit 2, as a model that cannot load ends."""
    from reasondiff.console import fail

    fail("stopped before loading (test)")


@pytest.fixture
def thinkdiff_places(places, tmp_path, monkeypatch):
    """`places`, and ThinkDiff's pipelines and VLMs (the shipped mini's too) replaced by the stop."""
    import dataclasses

    from reasondiff.thinkdiff import cli as thinkdiff_cli
    from reasondiff.thinkdiff.offline import OFFLINE_MODELS

    shipped = OFFLINE_MODELS["mini"]
    monkeypatch.setitem(OFFLINE_MODELS, "mini", lambda: dataclasses.replace(shipped(), pipeline=stop_loading))
    monkeypatch.setattr(thinkdiff_cli, "_load_vlm", stop_loading)
    monkeypatch.setattr(thinkdiff_cli, "_load_pipeline", stop_loading)
    return {**places, "images": [*places["images"], str(tmp_path)],
            "outs": [p.replace(".mp4", ".png") for p in places["outs"]] + [str(tmp_path / "o.mp4")]}


@EXAMPLES
@given(data=st.data())
def test_thinkdiff_generate_with_random_options(thinkdiff_places, data):
    args = ["thinkdiff", "generate"]
    for name, values in [("--model", st.sampled_from(["mini", "tiny", "nonsense"])),
                         ("--variant", st.sampled_from(["lvlm", "clip", "x"])),
                         ("--decoder", st.sampled_from(["flux", "wan", "cogvideox", "mini", "bogus"])),
                         ("--steps", huge), ("--guidance", floats), ("--height", huge), ("--width", huge),
                         ("--frames", huge), ("--seed", huge), ("--max-new-tokens", huge), ("--device", devices),
                         ("--image", st.sampled_from(thinkdiff_places["images"])), ("--text", words),
                         ("-o", st.sampled_from(thinkdiff_places["outs"]))]:
        args += data.draw(option(name, values))
    assert_one_clear_line(runner.invoke(app, args), args)


@pytest.fixture
def scoring_places(places, tmp_path):
    """A two-case benchmark of 17-frame videos, and broken variants of it: a zero-byte video, a 9-frame one, a
    row without `position`, a folder or a non-JSON file for the benchmark, a file for the videos folder."""
    import numpy as np
    from PIL import Image

    from reasondiff.media import save_video

    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    good, empty, short = tmp_path / "videos", tmp_path / "empty", tmp_path / "short"
    rows = []
    for folder in (good, empty, short):
        folder.mkdir()
    for case in ("c0", "c1"):
        frames = rng.random((17, 16, 16, 3)).astype(np.float32)
        Image.fromarray((frames[0] * 255).astype(np.uint8)).save(tmp_path / "images" / f"{case}.png")
        for folder in (good, empty, short):
            save_video(frames, folder / f"{case}.mp4", fps=8)
        rows.append({"id": case, "image": f"images/{case}.png", "prompt": "a cat", "position": 1, "frames": 17})
    (empty / "c1.mp4").write_bytes(b"")
    save_video(rng.random((9, 16, 16, 3)).astype(np.float32), short / "c1.mp4", fps=8)
    benchmark, unplaced = tmp_path / "benchmark.jsonl", tmp_path / "unplaced.jsonl"
    benchmark.write_text("".join(json.dumps(row) + "\n" for row in rows))
    unplaced.write_text(json.dumps(rows[0]) + "\n" + json.dumps({k: v for k, v in rows[1].items() if k != "position"}))
    return {**places, "benchmarks": [str(benchmark)] * 3 + [str(unplaced), str(tmp_path), str(tmp_path / "a_file")],
            "videos": [str(good), str(empty), str(empty), str(short), str(short), str(tmp_path / "a_file"),
                       str(tmp_path / "missing")],
            "folders": st.one_of(st.uuids().map(lambda u: str(tmp_path / "scores" / u.hex)), st.sampled_from(
                [str(tmp_path / "a_file"), str(tmp_path / "a_file" / "x"), "/proc/no-such-folder/x",
                 str(tmp_path / "images")]))}


@settings(EXAMPLES, max_examples=20)
@given(data=st.data())
def test_eval_score_with_random_options(scoring_places, data):
    args = ["eval", "score", "-b", data.draw(st.sampled_from(scoring_places["benchmarks"])),
            "--videos", data.draw(st.sampled_from(scoring_places["videos"])),
            "-o", data.draw(scoring_places["folders"]),  # mostly a new folder: a reused one refuses other settings
            "--metrics", data.draw(st.sampled_from(["sharpness", "sharpness", "sharpness,bogus", "clip_nothing"]))]
    for name, values in [("--fps", floats), ("--label", words), ("--device", devices)]:
        args += data.draw(option(name, values))
    assert_one_clear_line(runner.invoke(app, args), args)


@pytest.fixture
def train_places(places, tmp_path, monkeypatch):
    """Config files good and broken (malformed YAML, a list, bytes that are not text, a folder, none), and a
    Trainer that stops like a config it cannot train (exit 2), so an example costs no training."""
    import shutil

    import reasondiff.training as training

    def stop(*args, **kwargs):
        raise ValueError("stopped before training (test)")

    monkeypatch.setattr(training, "Trainer", stop)
    good = shutil.copy("configs/tiny_stage1.yaml", tmp_path / "good.yaml")
    (tmp_path / "bad.yaml").write_text("stage: 1\nmodel: [unclosed\n  x: 1\n")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "bytes.yaml").write_bytes(b"\xff\xfe\x00stage")
    return {**places, "configs": [str(good), str(tmp_path / "bad.yaml"), str(tmp_path / "list.yaml"),
                                  str(tmp_path / "bytes.yaml"), str(tmp_path), str(tmp_path / "missing.yaml")]}


overrides = st.tuples(
    st.sampled_from(["max_steps", "learning_rate", "log_every", "checkpoint_every", "seed", "batch_size", "stage",
                     "lora_rank", "shift", "model.x", "alignformer.hidden_dim", "nokey", "a.b.c", ""]),
    st.one_of(floats.map(str), huge.map(str), st.sampled_from(["[", "{a: 1}", "x", "", ".nan", "-.inf", "~"])),
).map(lambda kv: f"{kv[0]}={kv[1]}")


@EXAMPLES
@given(data=st.data())
def test_train_with_random_configs_and_overrides(train_places, data):
    args = ["train", "--config", data.draw(st.sampled_from(train_places["configs"])),
            *data.draw(st.lists(st.one_of(overrides, words), max_size=3))]
    assert_one_clear_line(runner.invoke(app, args), args)


@pytest.fixture
def data_places(places, tmp_path, monkeypatch):
    """A folder with one good 5-second video, one of corrupt files, an empty one; a sampled dataset of it; and
    the encoders `data cache` loads replaced by a stop (exit 2, as a model that cannot load)."""
    import numpy as np

    import reasondiff.data.cli as data_cli
    from reasondiff.data.sampling import sample_videos
    from reasondiff.media import save_video

    def stop(*args, **kwargs):
        raise ValueError("stopped before loading (test)")

    monkeypatch.setattr(data_cli, "_load_encoders", stop)
    good, corrupt, empty = tmp_path / "good", tmp_path / "corrupt", tmp_path / "empty"
    for folder in (good, corrupt, empty):
        folder.mkdir()
    save_video(np.random.default_rng(0).random((40, 16, 16, 3)).astype(np.float32), good / "v.mp4", fps=8)
    (corrupt / "a.mp4").write_bytes(b"not a video")
    (corrupt / "b.mp4").write_bytes(b"")
    sample_videos(good, tmp_path / "dataset", num_frames=5, size=(16, 16), progress=False)
    (tmp_path / "dataset" / "captions.jsonl").write_text(json.dumps({"clip_id": "v-000", "captions": list("abcde")}))
    (tmp_path / "nocaptions.jsonl").write_text('{"clip_id": "v-000"}\n')
    folders = [str(good), str(corrupt), str(empty), str(tmp_path / "a_file"), str(tmp_path / "missing")]
    return {**places, "inputs": folders, "datasets": [str(tmp_path / "dataset"), *folders],
            "captions": [str(tmp_path / "dataset" / "captions.jsonl"), str(tmp_path / "nocaptions.jsonl"),
                         str(tmp_path / "a_file"), str(tmp_path)],
            "outputs": [str(tmp_path / "out"), str(tmp_path / "a_file"), str(tmp_path / "a_file" / "x"),
                        "/proc/no-such-folder/x", str(tmp_path / "dataset")]}


def data_command(data, places):
    """A `data` subcommand with drawn arguments (no captioning: that needs a narrator, tested in data/)."""
    command = data.draw(st.sampled_from(["sample", "cache", "build-unpaired", "build-paired"]))
    if command == "sample":
        args = ["data", "sample", data.draw(st.sampled_from(places["inputs"])),
                data.draw(st.sampled_from(places["outputs"])), "--no-progress"]
        drawn = [("--frames", huge), ("--interval", floats), ("--clips-per-video", huge), ("--shard-size", huge),
                 ("--size", st.one_of(words, huge, st.sampled_from(["16", "32x16", "0", "1x1x1", "20000"]))),
                 ("--store", st.sampled_from(["raw", "jpeg", "bogus"])), ("--quality", huge), ("--limit", huge)]
    else:
        args = ["data", command, data.draw(st.sampled_from(places["datasets"])),
                data.draw(st.sampled_from(places["outputs"]))]
        drawn = [("--captions", st.sampled_from(places["captions"])), ("--seed", huge), ("--num", huge)]
        if command == "cache":
            args += ["--model", data.draw(st.sampled_from(["tiny", "nonsense"])), "--no-progress"]
            drawn = [("--device", devices), ("--dtype", st.sampled_from(["auto", "float32", "int8", ""])),
                     ("--anchors", huge), ("--shard-size", huge), ("--store-dtype", words), ("--seed", huge)]
        elif command == "build-paired":
            drawn.append(("--prompt", st.sampled_from(["source", "first", "middle", "last", "bogus"])))
    for name, values in drawn:
        args += data.draw(option(name, values))
    return args


@EXAMPLES
@given(data=st.data())
def test_data_commands_with_random_options(data_places, data):
    args = data_command(data, data_places)
    assert_one_clear_line(runner.invoke(app, args), args)
