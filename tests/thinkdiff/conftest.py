import pytest
import thinkdiff_toy as toy
import torch

from reasondiff.thinkdiff import tiny


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every ThinkDiff test runs on one thread (tests/conftest.py says why): ~10x faster here."""


@pytest.fixture(scope="session")
def toy_captions():
    return toy.toy_captions(400, seed=0)


@pytest.fixture(scope="session")
def pretrained_t5(toy_captions):
    """A tiny T5 pretrained on the toy world, its encoder's final norm at a trained-checkpoint-like scale (0.1)."""
    torch.set_num_threads(1)
    return toy.pretrain_t5_toy(tiny.t5(0, encoder_norm_scale=0.1), tiny.t5_tokenizer(), toy_captions, steps=300)
