"""The editable script: table rows <-> Narration, and the strip that marks where the image sits."""

import math

import pytest
from fakes import VASE_STORY

from reasondiff import Narration
from reasondiff.app import timeline


def test_rows_round_trip_the_narration():
    rows = timeline.to_rows(VASE_STORY)
    assert rows == [[1, 4, "an intact vase"], [5, 10, "a cat enters and knocks the vase"],
                    [11, 17, "broken vase on the floor"]]
    back = timeline.from_rows(rows, VASE_STORY.position, 17)
    assert back.descriptions == VASE_STORY.descriptions and back.position == VASE_STORY.position


def test_edited_table_from_the_browser_is_read_in_any_order_with_blank_rows():
    # The Dataframe hands over floats and strings, and "add row" leaves empty rows.
    rows = [["11", "17", " broken vase "], [1.0, 4.0, "an intact vase"], [None, None, ""],
            [5, 10, "a dog knocks the vase"], [math.nan, math.nan, None]]
    script = timeline.from_rows(rows, 9.0, 17, source="edited")
    assert script.segments()[1].description == "a dog knocks the vase"
    assert script.descriptions[-1] == "broken vase"
    assert script.position == 9 and script.metadata == {"source": "edited"}


@pytest.mark.parametrize("rows, position, message", [
    ([[1, 4, "a"], [6, 17, "b"]], 1, "frames 5-5 have no description"),
    ([[1, 6, "a"], [5, 17, "b"]], 1, "overlaps"),
    ([[1, 10, "a"]], 1, "frames 11-17 have no description"),
    ([[1, 4, "a"], [5, 17, "  "]], 1, "row 2 (frames 5-17): the description is empty"),
    ([[1, "four", "a"], [5, 17, "b"]], 1, "row 1: end must be a frame number"),
    ([[1, 4.5, "a"], [5, 17, "b"]], 1, "whole frame number"),
    ([[0, 17, "a"]], 1, "1 <= start <= end <= 17"),
    ([[1, 17, "a"]], 18, "between 1 and 17"),
    ([[1, 17, "a"]], None, "between 1 and 17"),
    ([], 1, "the script is empty"),
])
def test_bad_tables_name_the_problem(rows, position, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        timeline.from_rows(rows, position, 17)


def test_starter_script_is_the_prompt_everywhere_with_the_image_first():
    script = timeline.starter("  a dog runs  ", 9)
    assert script.descriptions == ["a dog runs"] * 9 and script.position == 1
    assert timeline.to_rows(script) == [[1, 9, "a dog runs"]]


def test_strip_marks_the_anchor_and_escapes_user_text():
    script = Narration.from_segments(12, [(1, 8, "<b>cat</b> & vase"), (9, 17, "shards")])
    html = timeline.strip_html(script)
    assert html.count('class="rd-seg"') == 2
    assert 'data-frame="12"' in html and "the image is frame <b>12</b>" in html
    assert "&lt;b&gt;cat&lt;/b&gt; &amp; vase" in html and "<b>cat</b>" not in html
    assert "Frame@1-8" in html and "Frame@9-17" in html
