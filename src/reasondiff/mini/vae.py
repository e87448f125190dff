"""Training the mini model's video VAE (diffusers' `AutoencoderKLWan`, small) on SynthWorld clips.

Wan's VAE is causal in time and carries a feature cache from one 4-frame group to the next, so each step
draws windows of several lengths (1, 5, 9 or 17 frames: 1-5 latent frames) with about the same number of frames
per step: one-frame windows teach the spatial code from many scenes, longer ones the cache path between
groups. The decoder reads the posterior's mean, as the pipeline's condition path does. Agents and objects
cover a few percent of a frame, so their pixels weigh `foreground_weight` times the room's in the L1 loss.
Most steps run on random crops (`crop`): convolutions do not care where a pixel sits, and a 32x32 crop costs a
quarter of a full frame, so the same hour sees four times the scenes; the last phase trains on whole frames.
What earlier settings did and why these were chosen: docs/mini.md, "The VAE".

Checkpoints (`OUT/checkpoint/`: the model in safetensors, the optimizer state, the step) are written
to a temporary folder and renamed, so a killed run resumes from the last complete one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan

from .world import ROOMS, sample_script

# 4x spatial and 4x temporal compression: a 64x64x17 clip becomes 16x5x16x16 (Wan2.1's 4x time, so frame
# counts stay 4k+1). Base width 32: the width-16 v1 reconstructed held-out clips at 24 dB (docs/mini.md).
MINI_VAE = dict(base_dim=32, z_dim=16, dim_mult=[1, 2, 2], num_res_blocks=1, temperal_downsample=[True, True],
                scale_factor_spatial=4)


FOREGROUND_WEIGHT = 3.0


def clip_batch(rng: np.random.Generator, batch: int, frames: int, size: int,
               foreground_weight: float = FOREGROUND_WEIGHT, crop: int | None = None,
               mark_trails: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """`[B, 3, frames, S, S]` in [-1, 1]: random windows of random SynthWorld clips (S = `crop` when given: a random
    square of the `size` frames that holds the object), and per-pixel loss weights `[B, 1, frames, S, S]` that
    count the agent and the object `foreground_weight` times the room around them, at every frame of the window
    (the room behind a moving agent or a falling tower is where a causal VAE leaves ghosts). Objects stand in the training
    band only; a crop puts them anywhere in its square, which is how the VAE learns to draw the benchmark's
    held-out positions without seeing them."""
    videos, weights = [], []
    for _ in range(batch):
        script = sample_script(rng, num_frames=17)
        start = int(rng.integers(0, 17 - frames + 1))
        clip = np.stack([script.render(t, size) for t in range(start, start + frames)])
        if crop:
            x = int(np.clip(script.object_x * size - crop / 2 + rng.integers(-crop // 3, crop // 3 + 1), 0, size - crop))
            y = int(rng.integers(0, size - crop + 1))
            clip = clip[:, y:y + crop, x:x + crop]
        wall, floor = (np.array(c, dtype=np.uint8) for c in ROOMS[script.room])
        foreground = ~(np.all(clip == wall, axis=-1) | np.all(clip == floor, axis=-1))
        if mark_trails:  # where an agent passes or an object falls, at every frame: no ghosts left behind
            foreground |= foreground.any(axis=0)
        videos.append(torch.from_numpy(clip).permute(3, 0, 1, 2))
        weights.append(torch.from_numpy(1.0 + (foreground_weight - 1.0) * foreground.astype(np.float32))[None])
    return torch.stack(videos).float() / 127.5 - 1.0, torch.stack(weights)


def _save(vae, optimizer, step: int, out: Path) -> None:
    final, tmp = out / "checkpoint", out / "checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    vae.save_pretrained(tmp / "vae")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step}) + "\n")
    old = out / "checkpoint.old"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


@torch.no_grad()
def set_latent_statistics(vae: AutoencoderKLWan, clips: int = 64, seed: int = 12345) -> AutoencoderKLWan:
    """Store the per-channel mean and std of the latents in the VAE's config (`latents_mean`/`latents_std`, as
    Wan2.1 ships them): the pipeline and the training cache normalise with them, so the DiT sees unit-variance
    latents whatever scale the VAE happened to learn."""
    rng = np.random.default_rng(seed)
    latents = torch.cat([vae.encode(clip_batch(rng, 8, 17, 64)[0]).latent_dist.mode() for _ in range(max(1, clips // 8))])
    dims = (0, 2, 3, 4)
    vae.register_to_config(latents_mean=latents.mean(dim=dims).tolist(), latents_std=latents.std(dim=dims).tolist())
    return vae


def train_vae(out_dir: str | Path, steps: int, frames_per_step: int = 20, windows: tuple[int, ...] = (1, 5, 9, 17), size: int = 64,
              crop: int | None = None, mark_trails: bool = True,
              learning_rate: float = 3e-4, kl_weight: float = 1e-6, seed: int = 0, checkpoint_every: int = 100,
              foreground_weight: float = FOREGROUND_WEIGHT, log=print) -> AutoencoderKLWan:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    resume = (out / "checkpoint" / "state.json").exists()
    torch.manual_seed(seed)
    vae = AutoencoderKLWan.from_pretrained(out / "checkpoint" / "vae") if resume else AutoencoderKLWan(**MINI_VAE)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=learning_rate, weight_decay=0.0)
    step = 0
    if resume:
        optimizer.load_state_dict(torch.load(out / "checkpoint" / "optimizer.pt"))
        for group in optimizer.param_groups:  # a resumed run may continue at another rate
            group["lr"] = learning_rate
        step = json.loads((out / "checkpoint" / "state.json").read_text())["step"]
        log(f"resumed at step {step}")
    vae.train()
    start, first = time.perf_counter(), step
    while step < steps:
        rng = np.random.default_rng([seed, step])  # the batch of a step depends on the step only: exact resume
        frames = windows[int(rng.integers(len(windows)))]
        video, weight = clip_batch(rng, max(1, frames_per_step // frames), frames, size, foreground_weight, crop,
                                   mark_trails)
        posterior = vae.encode(video).latent_dist
        reconstruction = vae.decode(posterior.mode()).sample
        l1 = ((reconstruction - video).abs() * weight).sum() / (weight.sum() * 3)
        loss = l1 + kl_weight * posterior.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % 10 == 0:
            rate = (step - first) / (time.perf_counter() - start)
            log(json.dumps({"step": step, "frames": frames, "l1": round(l1.item(), 5), "steps_per_s": round(rate, 3)}))
        if step % checkpoint_every == 0 or step == steps:
            _save(vae, optimizer, step, out)
    return vae.eval()


def export_vae(out_dir: str | Path, stats_clips: int = 64) -> Path:
    """`OUT/vae`: the last checkpoint's VAE with its latent statistics, the folder the rest of the recipe reads."""
    out = Path(out_dir)
    vae = AutoencoderKLWan.from_pretrained(out / "checkpoint" / "vae").eval()
    vae.register_to_config(scale_factor_spatial=MINI_VAE["scale_factor_spatial"])  # what the pipelines read
    vae = set_latent_statistics(vae, stats_clips)
    vae.save_pretrained(out / "vae")
    return out / "vae"


if __name__ == "__main__":
    import typer

    from ..console import script_app

    def _windows(text: str) -> tuple[int, ...]:
        try:
            return tuple(int(w) for w in text.split(","))
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a comma-separated list of frame counts, e.g. 1,5,9,17") from None

    app = script_app(__doc__)

    @app.command()
    def main(
        out: str = typer.Argument(..., help="Training folder (resumed if it exists); the VAE is exported to OUT/vae."),
        steps: int = typer.Option(3000, "--steps", help="Train up to this many steps in all."),
        frames_per_step: int = typer.Option(20, "--frames-per-step"),
        checkpoint_every: int = typer.Option(100, "--checkpoint-every"),
        learning_rate: float = typer.Option(3e-4, "--learning-rate"),
        foreground_weight: float = typer.Option(FOREGROUND_WEIGHT, "--foreground-weight"),
        crop: int | None = typer.Option(None, "--crop", help="Train on random squares of this side."),
        windows: str = typer.Option("1,5,9,17", "--windows", help="Clip lengths a step may draw (4k+1 frames)."),
        mark_trails: bool = typer.Option(True, "--mark-trails/--no-mark-trails",
                                         help="Weight agents and objects along their whole trail, not only where they are."),
    ) -> None:
        """Train the mini VAE on SynthWorld, then export it."""
        train_vae(out, steps, frames_per_step=frames_per_step, checkpoint_every=checkpoint_every,
                  learning_rate=learning_rate, foreground_weight=foreground_weight, crop=crop, mark_trails=mark_trails,
                  windows=_windows(windows), log=lambda m: print(m, flush=True))
        print(export_vae(out), flush=True)

    app()
