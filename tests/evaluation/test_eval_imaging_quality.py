import importlib.util

import numpy as np
import pytest
import torch

from reasondiff.evaluation.imaging_quality import ImagingQuality, longer_side_resize


class RecordingScorer:
    """Stands in for MUSIQ: 100 × mean brightness, and remembers what it was given."""

    def __init__(self):
        self.shapes, self.maxima = [], []

    def __call__(self, frames):
        self.shapes.append(tuple(frames.shape))
        self.maxima.append(float(frames.max()))
        return 100 * frames.mean(dim=(1, 2, 3))


def test_longer_side_is_capped_at_512():
    assert longer_side_resize(torch.zeros(2, 3, 600, 300)).shape[-2:] == (512, 256)
    assert longer_side_resize(torch.zeros(1, 3, 480, 832)).shape[-2:] == (295, 512)  # int(512/832*480) = 295
    small = torch.rand(1, 3, 480, 512) * 255
    assert longer_side_resize(small) is small  # untouched at or under 512


def test_protocol_scales_frames_to_unit_range_and_divides_by_100():
    scorer = RecordingScorer()
    video = np.stack([np.full((600, 300, 3), v, np.uint8) for v in (51, 102, 153)])
    score = ImagingQuality(scorer)(video)
    assert scorer.shapes == [(1, 3, 512, 256)] * 3  # one frame per call, VBench's default
    assert max(scorer.maxima) <= 1.0
    assert score == pytest.approx((0.2 + 0.4 + 0.6) / 3)  # mean of 20, 40, 60 -> / 100
    batched = RecordingScorer()
    assert ImagingQuality(batched, batch_size=2)(video) == pytest.approx(score)
    assert [s[0] for s in batched.shapes] == [2, 1]


def test_a_real_network_scores_the_frames_it_is_given_as_the_protocol_says():
    """A seeded random CNN with MUSIQ's output scale (0–100) through the whole protocol: the score is the mean of
    its per-frame outputs on the uint8 frames scaled to [0, 1], divided by 100, whether the video came as floats
    or as the uint8 frames they round to (replaces a check that a sigmoid lies in [0, 1])."""
    from reasondiff.evaluation.frame_format import to_uint8_frames

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 1), torch.nn.Sigmoid()).eval()
    video = np.random.default_rng(0).random((5, 64, 96, 3)).astype(np.float32)
    quality = ImagingQuality(lambda x: 100 * net(x)[:, 0])
    pixels = torch.from_numpy(to_uint8_frames(video)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        expected = float(net(pixels)[:, 0].mean())
    assert quality(video) == pytest.approx(expected, rel=1e-6)
    assert quality(to_uint8_frames(video)) == pytest.approx(expected, rel=1e-6)
    assert quality(video[::-1].copy()) == pytest.approx(expected, rel=1e-6)  # a mean: the order does not matter
    assert quality(np.zeros_like(video)) != pytest.approx(expected, rel=1e-3)  # and the content does


def test_scorer_must_return_one_score_per_frame():
    with pytest.raises(ValueError, match="2 scores for 1 frames"):
        ImagingQuality(lambda x: torch.zeros(2))(np.zeros((1, 8, 8, 3), np.uint8))


@pytest.mark.skipif(importlib.util.find_spec("pyiqa") is not None, reason="pyiqa is installed")
def test_missing_pyiqa_names_the_extra():
    with pytest.raises(ImportError, match="pip install pyiqa"):
        ImagingQuality.from_pretrained()


def test_from_pretrained_builds_pyiqas_musiq_as_vbench_does(monkeypatch):
    """pyiqa is not installed here: a stand-in module checks which MUSIQ we ask for and how we run it."""
    import sys
    import types

    built = []

    class MUSIQ(torch.nn.Module):
        def __init__(self, **kwargs):
            super().__init__()
            built.append(kwargs)
            self.scale = torch.nn.Parameter(torch.tensor(50.0))

        def forward(self, x):
            assert not self.training  # VBench sets model.training = False
            return self.scale * x.mean(dim=(1, 2, 3))

    arch = types.ModuleType("pyiqa.archs.musiq_arch")
    arch.MUSIQ = MUSIQ
    for name, module in {"pyiqa": types.ModuleType("pyiqa"), "pyiqa.archs": types.ModuleType("pyiqa.archs"),
                         "pyiqa.archs.musiq_arch": arch}.items():
        monkeypatch.setitem(sys.modules, name, module)
    local = ImagingQuality.from_pretrained("/ckpt/musiq_spaq_ckpt-358bb6af.pth")
    downloaded = ImagingQuality.from_pretrained()
    assert built == [{"pretrained_model_path": "/ckpt/musiq_spaq_ckpt-358bb6af.pth"}, {"pretrained": "spaq"}]
    assert local(np.full((2, 8, 8, 3), 255, np.uint8)) == pytest.approx(0.5)
    assert downloaded(np.zeros((1, 8, 8, 3), np.uint8)) == 0.0
