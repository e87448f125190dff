"""`prepare_generation`: the one place `generate`, `demo`, the studio and `eval run` check what they are asked."""

import pytest

from reasondiff.pipelines.registry import TINY
from reasondiff.pipelines.settings import MODES, NARRATED_MODES, prepare_generation


def test_each_model_brings_its_own_defaults_and_given_values_win():
    mini = prepare_generation("mini", model_narrator=True)
    assert (mini.frames, mini.height, mini.width, mini.steps, mini.guidance, mini.narrator) == (
        17, 64, 64, 10, 1.0, "synthworld:")  # the mini models learnt no unconditional model: no guidance
    tiny = prepare_generation("tiny", model_narrator=True)
    assert (tiny.frames, tiny.height, tiny.width, tiny.steps, tiny.guidance, tiny.narrator) == (17, 64, 64, 4, 5.0, None)
    wan = prepare_generation("some/hub-model", ("wan", "reasondiff"))
    assert (wan.frames, wan.height, wan.width, wan.steps, wan.guidance, wan.modes) == (
        81, 480, 832, 50, 5.0, ("wan", "reasondiff"))
    given = prepare_generation("mini", frames=33, steps=3, guidance=4.0, narrator="openai:gpt-4o", model_narrator=True)
    assert (given.frames, given.steps, given.guidance, given.narrator) == (33, 3, 4.0, "openai:gpt-4o")
    assert prepare_generation("mini").narrator is None  # the world's narrator only when asked for


def test_notices_say_what_a_run_is_not():
    assert prepare_generation("tiny").notices == (TINY.notice,)
    assert prepare_generation("mini").notices == ()
    (warning,) = prepare_generation("mini", frames=33).notices
    assert "trained on 17-frame videos" in warning


@pytest.mark.parametrize("model, options, message", [
    ("tiny", {"modes": ("sideways",)}, "unknown mode 'sideways'"),
    ("tiny", {"modes": ()}, "(none given)"),
    ("tiny", {"modes": ("rewrite",)}, "mode 'rewrite' needs a narrator"),
    ("mini", {"modes": ("rewrite",), "model_narrator": True}, None),  # the world's narrator rewrites
    ("tiny", {"prompt": "  "}, "the prompt is empty"),
    ("tiny", {"frames": 18}, "4k+1"),
    ("tiny", {"height": 40}, "positive multiples of 16"),
    ("tiny", {"width": 0}, "positive multiples of 16"),
    ("tiny", {"steps": 0}, "at least 1 and at most 1000"),
    ("tiny", {"steps": 1001}, "at least 1 and at most 1000"),
    ("mini", {"frames": 4 * 1000 + 1}, "can place in time"),  # mini's rotary table, read from its config
])
def test_bad_settings_are_one_line_before_any_model_loads(model, options, message):
    modes = options.pop("modes", ("reasondiff",))
    if message is None:
        assert prepare_generation(model, modes, **options).modes == modes
        return
    with pytest.raises(ValueError, match=None) as err:
        prepare_generation(model, modes, **options)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_modes_are_named_once():
    import reasondiff.pipelines as pipelines

    assert pipelines.MODES is MODES and set(NARRATED_MODES) < set(MODES)
    assert set(MODES) - set(NARRATED_MODES) == {"wan", "rewrite"}
