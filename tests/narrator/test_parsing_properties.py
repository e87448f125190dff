"""Property tests: every accepted form of a valid script reads back to it; no text raises anything else."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasondiff import Narration
from reasondiff.narrator import NarrationError, parse_narration

SETTINGS = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Descriptions as models write them: any printable text, quotes, braces and backslashes included, without
# surrounding whitespace (the labelled "Frame@a-b: text" form cannot keep it).
texts = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=30
).map(str.strip).filter(bool)


@st.composite
def narrations(draw):
    runs = draw(st.lists(st.tuples(st.integers(1, 6), texts), min_size=1, max_size=5))
    descriptions = [text for length, text in runs for _ in range(length)]
    position = draw(st.integers(1, len(descriptions)))
    return Narration(position=position, descriptions=descriptions)


def segments_json(n, base=1, key_style="Frame@{}-{}"):
    return {key_style.format(s.start - 1 + base, s.end - 1 + base): s.description for s in n.segments()}


def serialise(n: Narration, form: str) -> str:
    plain = {"position": n.position, "descriptions": n.descriptions}
    if form == "json":
        return json.dumps(plain)
    if form == "unicode-json":
        return json.dumps(plain, ensure_ascii=False, indent=2)
    if form == "fenced":
        return "```json\n" + json.dumps(plain, ensure_ascii=False) + "\n```"
    if form == "prose":
        return "Here is the script {as requested}:\n" + json.dumps(plain) + "\nThe image ends the story."
    if form == "trailing-commas":
        items = "".join(json.dumps(d) + ", " for d in n.descriptions)
        return '{"position": %d, "descriptions": [%s],}' % (n.position, items)
    if form == "single-quotes":
        return repr(plain)
    if form == "string-position":
        return json.dumps({**plain, "position": str(n.position)})
    if form == "segments":
        return json.dumps({"position": n.position, "descriptions": segments_json(n)})
    if form == "zero-based-segments":
        return json.dumps({"position": n.position - 1, "descriptions": segments_json(n, base=0, key_style="{}-{}")})
    if form == "labelled-segments":
        labelled = [f"Frame@{s.start}-{s.end}: {s.description}" for s in n.segments()]
        return json.dumps({"position": n.position, "descriptions": labelled})
    if form == "segment-objects":
        items = [{"start": s.start, "end": s.end, "description": s.description} for s in n.segments()]
        return json.dumps({"position": n.position, "segments": items})
    raise AssertionError(form)


FORMS = ["json", "unicode-json", "fenced", "prose", "trailing-commas", "single-quotes", "string-position", "segments",
         "zero-based-segments", "labelled-segments", "segment-objects"]


@SETTINGS
@given(narrations(), st.sampled_from(FORMS))
def test_every_accepted_form_reads_back_to_the_same_script(n, form):
    parsed = parse_narration(serialise(n, form), n.num_frames)
    assert (parsed.position, parsed.descriptions) == (n.position, n.descriptions)


@SETTINGS
@given(st.text(max_size=300), st.integers(1, 40))
def test_arbitrary_text_raises_only_narration_error(text, frames):
    try:
        result = parse_narration(text, frames)
    except NarrationError:
        return
    assert isinstance(result, Narration) and result.num_frames == frames


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 100) | st.floats(allow_nan=True) | texts,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(
        ["position", "descriptions", "frames", "start", "end", "description", "1-3", "Frame@2", "x"]), inner, max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(json_like, st.integers(1, 40), st.sampled_from([json.dumps, repr, str]))
def test_arbitrary_structures_raise_only_narration_error(value, frames, dump):
    try:
        text = dump(value)
    except ValueError:  # json.dumps of NaN is fine; anything it refuses is not a model answer
        return
    try:
        result = parse_narration(text, frames)
    except NarrationError:
        return
    assert result.num_frames == frames and 1 <= result.position <= frames
