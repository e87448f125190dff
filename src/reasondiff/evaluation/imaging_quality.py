"""Imaging Quality, VBench's protocol around a MUSIQ model trained on SPAQ.

VBench (`vbench/core/imaging_quality.py`, default `preprocess_mode='longer'`): every frame is scaled so
its longer side is at most 512 (bilinear, no antialiasing, `int(scale * side)`), divided by 255, scored by
MUSIQ-SPAQ (a 0–100 quality score), the per-video score is the mean over frames and the reported number is
that mean / 100. We return the /100 value per video, so the benchmark mean equals VBench's number.

The network is pyiqa's `MUSIQ` with the checkpoint VBench downloads (`musiq_spaq_ckpt-358bb6af.pth`).
pyiqa pulls torchvision and a large environment, so it is an optional extra imported only when
`ImagingQuality.from_pretrained` is called; the protocol takes any callable `frames [B,3,H,W] in [0,1] ->
scores [B]` and is tested without it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .frame_format import to_uint8_frames

MUSIQ_SPAQ_URL = "https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/musiq_spaq_ckpt-358bb6af.pth"
INSTALL_HINT = "Imaging Quality needs pyiqa (MUSIQ): pip install pyiqa  (it installs torchvision; use a GPU environment)"

Scorer = Callable[[torch.Tensor], torch.Tensor]


def longer_side_resize(frames: torch.Tensor, max_side: int = 512) -> torch.Tensor:
    """VBench's 'longer' mode on float frames `[F, 3, H, W]` holding 0..255: shrink so max(H, W) <= 512.

    torchvision's `Resize(antialias=False)` on a uint8 video is bilinear interpolation without antialiasing,
    rounded back to integers; `F.interpolate` does the same arithmetic without needing torchvision.
    """
    _, _, h, w = frames.shape
    if max(h, w) <= max_side:
        return frames
    scale = max_side / max(h, w)
    resized = F.interpolate(frames, size=(int(scale * h), int(scale * w)), mode="bilinear", align_corners=False,
                            antialias=False)
    return resized.round().clamp(0, 255)


class ImagingQuality:
    """Mean MUSIQ score of a video's frames / 100 (VBench's Imaging Quality; higher is better, ~0.4–0.7 for real
    generators). The range is [0, 1] when the scorer stays in MUSIQ's 0–100; it is not clipped.

    Args:
        scorer: maps frames `[B, 3, H, W]` in [0, 1] to scores `[B]` on a 0–100 scale (pyiqa's MUSIQ).
        batch_size: frames per call (VBench scores one frame at a time by default; the result is the same).
        device: where frames are sent.
    """

    name = "imaging_quality"

    def __init__(self, scorer: Scorer, batch_size: int = 1, device: str | torch.device = "cpu", max_side: int = 512):
        self.scorer, self.batch_size, self.device, self.max_side = scorer, batch_size, torch.device(device), max_side

    @classmethod
    def from_pretrained(cls, path: str | None = None, device: str | torch.device = "cpu", **kwargs) -> ImagingQuality:
        """pyiqa's MUSIQ with the SPAQ checkpoint: a local `musiq_spaq_ckpt-358bb6af.pth`, or None to let pyiqa
        download it (from `MUSIQ_SPAQ_URL`)."""
        try:
            from pyiqa.archs.musiq_arch import MUSIQ
        except ImportError as err:
            raise ImportError(f"{INSTALL_HINT} ({err})") from err
        model = MUSIQ(pretrained_model_path=path) if path else MUSIQ(pretrained="spaq")
        model = model.to(device).eval()
        model.training = False  # as VBench: MUSIQ's forward reads the flag, not only eval()
        return cls(model, device=device, **kwargs)

    @torch.no_grad()
    def __call__(self, frames) -> float:
        """Imaging Quality of one video (uint8 or [0, 1] float frames `[F, H, W, 3]`)."""
        video = torch.from_numpy(to_uint8_frames(frames)).permute(0, 3, 1, 2).float()
        video = longer_side_resize(video, self.max_side) / 255.0
        scores = []
        for start in range(0, video.shape[0], self.batch_size):
            batch = video[start:start + self.batch_size].to(self.device)
            scores.append(torch.as_tensor(self.scorer(batch), dtype=torch.float64).reshape(-1).cpu())
        scores = torch.cat(scores)
        if scores.numel() != video.shape[0]:
            raise ValueError(f"the quality model returned {scores.numel()} scores for {video.shape[0]} frames")
        return float(scores.mean()) / 100.0
