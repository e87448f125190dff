import json

import pytest

from reasondiff import Narration
from reasondiff.narrator import NarrationError, parse_narration
from reasondiff.narrator.parsing import parse_text

STORY = Narration.from_segments(9, [(1, 2, "intact vase"), (3, 6, "a cat knocks the vase"), (7, 9, "broken vase")])
CLEAN = json.dumps({"position": 9, "descriptions": STORY.descriptions})
SEGMENTS = '{"position": 9, "descriptions": {"Frame@1-2": "intact vase", "Frame@3-6": "a cat knocks the vase", "Frame@7-9": "broken vase"}}'


def test_clean_answer_needs_no_repair():
    n = parse_narration(CLEAN, 9)
    assert (n.position, n.descriptions) == (9, STORY.descriptions)
    assert n.metadata == {}  # nothing repaired, nothing to warn about


@pytest.mark.parametrize(
    "text, warning",
    [
        (f"```json\n{CLEAN}\n```", None),
        (f"Sure! Here is the script you asked for:\n{CLEAN}\nLet me know if you want changes.", None),
        (f"Reasoning: the vase {{broken}} is the end.\n```\n{CLEAN}\n```\nDone.", None),
        (CLEAN.replace('"]', '",]').replace("]}", "],}"), None),  # trailing commas
        (repr({"position": 9, "descriptions": STORY.descriptions}), None),  # Python's single quotes
        ("{position: 9, // the image ends the story\n descriptions: " + json.dumps(STORY.descriptions) + "}", None),
        (CLEAN.replace('"position": 9', '"position": "9"'), "given as '9'"),
        (CLEAN.replace('"position": 9', '"position": "frame 9"'), "given as 'frame 9'"),
        (SEGMENTS, "frame ranges"),
        (json.dumps({"position": 9, "descriptions": ["Frame@1-2: intact vase", "Frame@3-6: a cat knocks the vase",
                                                     "Frame@7-9: broken vase"]}), "frame ranges"),
        (json.dumps({"position": 9, "segments": [{"frames": "1-2", "description": "intact vase"},
                                                 {"start": 3, "end": 6, "description": "a cat knocks the vase"},
                                                 {"start": 7, "end": 9, "text": "broken vase"}]}), "frame ranges"),
        (json.dumps({"position": 42, "descriptions": STORY.descriptions}), "outside frames 1..9; clamped to 9"),
    ],
)
def test_repairs_recover_the_script(text, warning):
    n = parse_narration(text, 9)
    assert (n.position, n.descriptions) == (9, STORY.descriptions)
    if warning:
        assert any(warning in w for w in n.metadata["warnings"]), n.metadata


def test_zero_based_answers_shift_to_one_based():
    n = parse_narration(json.dumps({"position": 0, "descriptions": STORY.descriptions}), 9)
    assert n.position == 1 and "0-based" in n.metadata["warnings"][0]
    # Segments numbered from 0 say the whole answer counts from 0, position included.
    zero = '{"position": 8, "descriptions": {"0-1": "intact vase", "2-5": "a cat knocks the vase", "6-8": "broken vase"}}'
    n = parse_narration(zero, 9)
    assert (n.position, n.descriptions) == (9, STORY.descriptions)


@pytest.mark.parametrize("count", [5, 17])
def test_miscounted_descriptions_are_resampled_with_a_warning(count):
    answer = STORY.resample(count)
    n = parse_narration(answer.to_json(), 9)
    assert n.num_frames == 9 and n.position == 9
    assert n.descriptions[0] == "intact vase" and n.descriptions[-1] == "broken vase"
    assert [s.description for s in n.segments()] == ["intact vase", "a cat knocks the vase", "broken vase"]
    assert f"described {count} frames instead of 9" in n.metadata["warnings"][-1]


def test_segment_gaps_and_overlaps_are_filled_and_reported():
    n = parse_narration('{"position": 1, "descriptions": {"1-2": "a", "5-6": "b", "6-7": "c"}}', 7)
    assert n.descriptions == ["a", "a", "a", "a", "b", "c", "c"]
    joined = " ".join(n.metadata["warnings"])
    assert "3-4 undescribed" in joined and "overlap at frame 6" in joined


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty"),
        ("I cannot help with that.", "no JSON object"),
        ('{"descriptions": ["a", "b"]}', "no 'position'"),
        ('{"position": 1}', "no 'descriptions'"),
        ('{"position": "late", "descriptions": ["a"]}', "not a frame number"),
        ('{"position": 1, "descriptions": ["a", ""]}', "empty descriptions"),
        ('{"position": 1, "descriptions": ["a", 3]}', "description 2 is not a string"),
        ('{"position": 1, "descriptions": ["a", "b", ...]}', "no JSON object"),
        ('{"position": 1, "descriptions": ["an intact vase", "a cat ent', "no JSON object"),  # cut off
        ('["a", "b"]', "no JSON object"),
    ],
)
def test_unrepairable_answers_raise_narration_error_with_the_raw_text(text, reason):
    with pytest.raises(NarrationError) as info:
        parse_narration(text, 2)
    assert reason in info.value.reason
    assert info.value.raw == text  # what the model said travels with the error
    assert isinstance(info.value, ValueError)


def test_deep_nesting_is_a_narration_error_not_a_recursion_error():
    with pytest.raises(NarrationError):
        parse_narration("{" + '"a": [' * 5000, 3)


@pytest.mark.parametrize(
    "raw, text",
    [
        ("A cat knocks a vase off the table.", "A cat knocks a vase off the table."),
        ('"A cat knocks a vase."', "A cat knocks a vase."),
        ("Prompt: A cat knocks a vase.", "A cat knocks a vase."),
        ("```\nA cat knocks a vase.\n```", "A cat knocks a vase."),
    ],
)
def test_parse_text_strips_wrapping(raw, text):
    assert parse_text(raw) == text


def test_parse_text_rejects_empty():
    with pytest.raises(NarrationError, match="caption is empty"):
        parse_text("  ``` ```  ", "caption")
