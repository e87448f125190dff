"""The bench's `Reasoner`: the VLM answers an episode, its generated-token features go through the aligner."""

from __future__ import annotations

import torch

from ...thinkdiff.aligner import Aligner
from ...thinkdiff.inference import ThinkDiffLVLM

INSTRUCTION = "what comes next?"  # the mini VLM is trained to answer episodes ending with this (vlm.py)


class ThinkDiffReasoner:
    def __init__(self, vlm, processor, aligner: Aligner, max_new_tokens: int = 32, instruction: str = INSTRUCTION):
        self.lvlm = ThinkDiffLVLM(vlm, processor, aligner.eval(), max_new_tokens)
        self.instruction = instruction

    def answer(self, items: list) -> tuple[torch.Tensor, str]:
        """(aligned tokens `[1, n, D]`, the VLM's text); greedy, so a case's answer is the same on every run."""
        return self.lvlm.encode([*items, self.instruction])

    @torch.no_grad()
    def random_tokens(self, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Gaussian tokens of `like`'s shape through the aligner's RMSNorm: aligned tokens' scale, no content.
        (Without a norm, each token is scaled to the RMS of `like`'s tokens.)"""
        noise = torch.randn(like.shape, generator=generator).to(like)
        norm = self.lvlm.aligner.norm
        if isinstance(norm, torch.nn.RMSNorm):
            return norm(noise)
        rms = like.pow(2).mean(-1, keepdim=True).sqrt()
        return noise * torch.rsqrt(noise.pow(2).mean(-1, keepdim=True)) * rms
