import json

import typer
from typer.testing import CliRunner

from fakes import STORY
from reasondiff import Narration
from reasondiff.narrator.cli import narrate, timeline

runner = CliRunner()


def app():
    """The command registered the way the main CLI does it: `app.command()(narrate)`."""
    cli = typer.Typer()
    cli.callback()(lambda: None)
    cli.command()(narrate)
    return cli


def invoke(*args):
    return runner.invoke(app(), ["narrate", *args])


def test_narrate_prints_a_timeline_and_writes_the_json(chat_server, small_image, tmp_path):
    image, out = tmp_path / "vase.png", tmp_path / "scripts" / "vase.json"
    small_image.save(image)
    chat_server.answer(f"```json\n{json.dumps({'position': '9', 'descriptions': STORY.descriptions})}\n```")
    result = invoke("-i", str(image), "-p", "A cat plays in the room", "--frames", "9",
                    "--narrator", f"openai:m@{chat_server.url}", "-o", str(out), "--cache-dir", str(tmp_path / "c"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "9 frames; the image is frame 9"
    assert lines[1].startswith("Frame@1-2  an intact vase on a table")
    assert lines[3].startswith("Frame@7-9  a broken vase on the floor  <- image (frame 9)")
    assert "repaired: position was given as '9'" in result.output
    written = Narration.from_json(out.read_text())
    assert (written.position, written.descriptions) == (9, STORY.descriptions)
    assert written.metadata["prompt"] == "A cat plays in the room"


def test_unreadable_answers_exit_with_the_raw_text(chat_server, small_image, tmp_path):
    image = tmp_path / "vase.png"
    small_image.save(image)
    for _ in range(2):
        chat_server.answer("Sorry, I can only describe images.")
    result = invoke("-i", str(image), "-p", "A cat plays", "--frames", "9", "--max-attempts", "2", "--no-cache",
                    "--narrator", f"openai:m@{chat_server.url}", "-o", str(tmp_path / "x.json"))
    assert result.exit_code == 2
    assert "Sorry, I can only describe images." in result.output and "no usable script" in result.output
    assert not (tmp_path / "x.json").exists()


def test_bad_inputs_fail_before_any_request(chat_server, small_image, tmp_path):
    image = tmp_path / "vase.png"
    small_image.save(image)
    spec = f"openai:m@{chat_server.url}"
    result = invoke("-i", str(image), "-p", "A cat", "--frames", "10", "--narrator", spec)
    assert result.exit_code == 2 and "4k+1" in result.output
    result = invoke("-i", str(tmp_path / "missing.png"), "-p", "A cat", "--frames", "9", "--narrator", spec,
                    "--cache-dir", str(tmp_path))
    assert result.exit_code == 2 and "image file not found" in result.output
    result = invoke("-i", str(image), "-p", "A cat", "--frames", "9", "--narrator", "nosuch:x")
    assert result.exit_code == 2 and "unknown narrator backend" in result.output
    assert chat_server.requests == []


def test_timeline_marks_a_single_frame_run():
    n = Narration.from_segments(5, [(1, 3, "a"), (4, 4, "b"), (5, 5, "c")])
    assert timeline(n).splitlines()[1:] == ["Frame@1-3  a", "Frame@4    b", "Frame@5    c  <- image (frame 5)"]
