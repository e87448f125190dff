"""Flow matching in the convention of diffusers' flow-match schedulers, so inference uses stock schedulers.

The paper (Eq. 1-2) writes x_t = t * x1 + (1 - t) * x0 with x1 the data and x0 noise, and regresses
u(x_t) onto x1 - x0. Diffusers' Wan schedulers (UniPC / FlowMatchEuler with flow sigmas) use
x_sigma = (1 - sigma) * x + sigma * eps and a model that predicts eps - x. With t = 1 - sigma the two
are the same path and the targets differ only in sign, so the loss ||u - v||^2 is the same number;
we train the DiT to predict eps - x, which is what Wan2.1's weights and schedulers expect.
"""

from __future__ import annotations

import torch

NUM_TRAIN_TIMESTEPS = 1000  # Wan's timestep = sigma * 1000


def sample_sigma(generator: torch.Generator, scheme: str, shift: float = 3.0, logit_mean: float = 0.0,
                 logit_std: float = 1.0) -> float:
    """One noise level in (0, 1): uniform, shifted as in Wan/SD3 training, or logit-normal."""
    if scheme == "logit_normal":
        u = torch.sigmoid(torch.randn((), generator=generator) * logit_std + logit_mean).item()
    else:
        u = torch.rand((), generator=generator).item()
    if scheme == "shifted":  # the same time shift as the schedulers' flow_shift: more steps at high noise
        u = shift * u / (1 + (shift - 1) * u)
    return min(max(u, 1e-4), 1.0 - 1e-4)


def noisy_latents(latents: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x_sigma = (1 - sigma) x + sigma eps   (Eq. 1's x_t with t = 1 - sigma)."""
    sigma = sigma.view(-1, *([1] * (latents.ndim - 1)))
    return (1 - sigma) * latents + sigma * noise


def velocity_target(latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """eps - x: Eq. 2's x1 - x0 with the sign of diffusers' flow_prediction."""
    return noise - latents


def timestep_weight(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """A per-sample loss weight that favours middle timesteps: exp(-2 ((t - 500) / 1000)^2) with t = 1000 sigma,
    minus its minimum and scaled to mean 1 over the 1000-step grid of the shifted schedule (sigmas linspace(1, 0)
    then shifted). This is the weighting DiffSynth-Studio's Wan trainer applies with shift 5; `weighting:
    gaussian` with `shift: 5` trains that way, `weighting: none` (ours) weighs every noise level alike."""
    grid = torch.linspace(1.0, 0.0, NUM_TRAIN_TIMESTEPS + 1, dtype=torch.float64)[:-1]
    grid = shift * grid / (1 + (shift - 1) * grid) * NUM_TRAIN_TIMESTEPS

    def bell(t):
        return torch.exp(-2 * ((t - NUM_TRAIN_TIMESTEPS / 2) / NUM_TRAIN_TIMESTEPS) ** 2)

    floor = bell(grid).min()
    scale = NUM_TRAIN_TIMESTEPS / (bell(grid) - floor).sum()
    return ((bell(sigma.double() * NUM_TRAIN_TIMESTEPS) - floor) * scale).to(sigma.dtype)
