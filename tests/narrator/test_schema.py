import pytest
from pydantic import ValidationError

from reasondiff import Narration
from reasondiff.narrator import Segment


def story81():
    return Narration.from_segments(81, [(1, 20, "intact vase"), (21, 45, "cat breaks vase"), (46, 70, "cat flees"),
                                        (71, 81, "broken vase")])


def test_segments_round_trip():
    n = story81()
    assert n.num_frames == 81 and n.position == 81
    assert n.segments() == [Segment(1, 20, "intact vase"), Segment(21, 45, "cat breaks vase"),
                            Segment(46, 70, "cat flees"), Segment(71, 81, "broken vase")]
    assert Narration.from_segments(81, [tuple(s) for s in n.segments()]) == n


def test_json_round_trip():
    n = story81().model_copy(update={"metadata": {"model": "gpt-4o"}})
    assert Narration.from_json(n.to_json()) == n


def test_latent_grouping():
    n = story81()
    groups = n.latent_descriptions()
    assert len(groups) == 21 and groups[0] == ("intact vase",)
    assert groups[4] == ("intact vase",) * 4  # pixel frames 14..17
    assert groups[5] == ("intact vase",) * 3 + ("cat breaks vase",)  # pixel frames 18..21
    assert n.latent_position == 20


def test_latent_group_straddling_a_change():
    n = Narration.from_segments(9, [(1, 3, "a"), (4, 9, "b")])
    assert n.latent_descriptions() == [("a",), ("a", "a", "b", "b"), ("b", "b", "b", "b")]


@pytest.mark.parametrize("frames", [17, 33, 5])
def test_resample_keeps_order_and_ends(frames):
    n = story81().resample(frames)
    assert n.num_frames == frames and n.position == frames
    texts = [s.description for s in n.segments()]
    assert texts == [t for t in ["intact vase", "cat breaks vase", "cat flees", "broken vase"] if t in texts]
    assert n.descriptions[-1] == "broken vase"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"position": 0, "descriptions": ["a"]}, "greater than or equal to 1"),
        ({"position": 3, "descriptions": ["a", "b"]}, "beyond"),
        ({"position": 1, "descriptions": []}, "at least 1"),
        ({"position": 1, "descriptions": ["a", " "]}, "empty"),
        ({"position": 1, "descriptions": ["a"], "extra": 1}, "extra"),
    ],
)
def test_invalid_narrations(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        Narration(**kwargs)


def test_segments_with_gaps_are_rejected():
    with pytest.raises(ValueError, match="gap"):
        Narration.from_segments(5, [(1, 2, "a"), (4, 5, "b")])
