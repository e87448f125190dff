"""A narrator server that answers in another format, or hangs: one line naming the URL, and never silence."""

import pytest
import typer
from typer.testing import CliRunner

from fakes import STORY
from reasondiff.narrator import NarratorProtocolError
from reasondiff.narrator.cli import narrate

runner = CliRunner()
PROMPT = "A cat plays in the room"


def narrate_cli():
    cli = typer.Typer()
    cli.callback()(lambda: None)
    cli.command()(narrate)
    return cli


def test_an_html_page_with_status_200_is_named_as_the_wrong_server(chat_server, narrator_factory, small_image):
    chat_server.html()
    with pytest.raises(NarratorProtocolError, match="did not answer in the OpenAI format") as err:
        narrator_factory().narrate(small_image, PROMPT, 9)
    assert chat_server.url in str(err.value) and "Sign in" in str(err.value)
    assert len(chat_server.requests) == 1  # a wrong server is not retried


def test_narrate_exits_2_on_an_html_answer(chat_server, small_image, tmp_path):
    image = tmp_path / "vase.png"
    small_image.save(image)
    chat_server.html()
    result = runner.invoke(narrate_cli(), ["narrate", "-i", str(image), "-p", PROMPT, "--frames", "9", "--no-cache",
                                           "--narrator", f"openai:m@{chat_server.url}", "-o", str(tmp_path / "s.json")])
    assert result.exit_code == 2, result.output
    assert f"the server at {chat_server.url} did not answer in the OpenAI format" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "s.json").exists()


def test_generate_exits_2_on_an_html_answer(chat_server, condition_image, tmp_path, monkeypatch):
    from reasondiff.cli import app

    monkeypatch.setenv("REASONDIFF_CACHE", str(tmp_path / "cache"))
    condition_image.save(tmp_path / "in.png")
    chat_server.html()
    result = runner.invoke(app, ["generate", "-i", str(tmp_path / "in.png"), "-p", PROMPT, "--model", "tiny",
                                 "--steps", "1", "--narrator", f"openai:m@{chat_server.url}",
                                 "-o", str(tmp_path / "x.mp4")])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "did not answer in the OpenAI format" in errors[0]


def test_a_hanging_server_is_announced_attempt_by_attempt_and_timeout_is_per_request(
        chat_server, small_image, tmp_path):
    image = tmp_path / "vase.png"
    small_image.save(image)
    chat_server.slow(3, "late").slow(3, "late").answer(STORY.to_json())
    result = runner.invoke(narrate_cli(), [
        "narrate", "-i", str(image), "-p", PROMPT, "--frames", "9", "--no-cache", "--timeout", "0.3",
        "--narrator", f"openai:m@{chat_server.url}", "-o", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    waiting = [line for line in result.stderr.splitlines() if line.startswith("waiting for")]
    assert waiting[0].startswith(f"waiting for {chat_server.url} (attempt 2/5): timed out")
    assert waiting[1].startswith(f"waiting for {chat_server.url} (attempt 3/5)") and len(waiting) == 2


def test_timeout_must_be_positive(small_image, tmp_path):
    image = tmp_path / "vase.png"
    small_image.save(image)
    result = runner.invoke(narrate_cli(), ["narrate", "-i", str(image), "-p", PROMPT, "--timeout", "0",
                                           "--narrator", "openai:m@http://127.0.0.1:9/v1"])
    assert result.exit_code == 2 and "--timeout must be positive" in result.output


def test_a_runaway_answer_is_not_parsed_and_is_asked_again(chat_server, narrator_factory, small_image):
    from reasondiff.narrator.narrator import MAX_ANSWER_CHARS

    chat_server.answer("x" * (MAX_ANSWER_CHARS + 1)).answer(STORY.to_json())
    narration = narrator_factory().narrate(small_image, PROMPT, 9)
    assert narration.descriptions == STORY.descriptions and narration.metadata["attempts"] == 2
    resent = chat_server.requests[1]["body"]["messages"][-2]["content"]  # the answer shown back to the model
    assert len(resent) <= MAX_ANSWER_CHARS and "characters; a script is at most" in str(narration.metadata)
