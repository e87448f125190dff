"""One settings vocabulary for both trainers: the new names, and the old ones read with a warning."""

import warnings

import pytest

from reasondiff.settings_names import renamed_settings
from reasondiff.training import load_config

BASE = "stage: 1\ncache_dir: c\noutput_dir: o\n"


def test_old_keys_read_as_the_new_ones_with_a_warning_naming_the_new_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "lr: 0.003\ngrad_clip: 0.5\n")
    with pytest.warns(DeprecationWarning) as caught:
        config = load_config(path, ["keep_checkpoints=7"])
    assert (config.learning_rate, config.max_grad_norm, config.keep_last) == (0.003, 0.5, 7)
    assert sorted(str(w.message) for w in caught) == [
        "training config: 'grad_clip' is deprecated, use 'max_grad_norm'",
        "training config: 'keep_checkpoints' is deprecated, use 'keep_last'",
        "training config: 'lr' is deprecated, use 'learning_rate'",
    ]


def test_new_keys_read_silently_and_both_spellings_at_once_are_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "learning_rate: 0.003\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_config(path).learning_rate == 0.003
    with pytest.raises(ValueError, match="'lr' and 'learning_rate' are the same setting"):
        load_config(path, ["lr=0.1"])
    assert renamed_settings({"steps": 3}) == {"steps": 3}
