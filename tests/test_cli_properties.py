"""Whatever options a user types, a command ends with exit 0, or exit 2 and one `error:` line: never a traceback.

Hypothesis draws option values (numbers of any sign and size, words, paths that cannot be written, files that
are not images, narrator specs that do not exist). Loading a model is replaced by a stop that exits 2 like a
model that cannot load, so an example that passes every check costs milliseconds, not a generation.
"""

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
    return {
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


@EXAMPLES
@given(data=st.data())
def test_generate_with_random_options(places, data):
    args = ["generate"]
    for name, values in [("--frames", numbers), ("--height", numbers), ("--width", numbers), ("--steps", numbers),
                         ("--mode", st.one_of(words, st.sampled_from(["wan", "rewrite", "reasondiff"]))),
                         ("--prompt", prompts), ("--narrator", narrators), ("--timeout", numbers),
                         ("--image", st.sampled_from(places["images"])), ("-o", st.sampled_from(places["outs"]))]:
        args += data.draw(option(name, values))
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
