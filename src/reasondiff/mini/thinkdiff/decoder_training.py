"""Training the text-to-image mini decoder (`decoder.py`: a one-frame Wan T2V DiT) on SynthWorld stills.

The DiT learns flow matching (`training.flow_matching`: x_sigma = (1 - sigma) x + sigma eps, predict eps - x,
sigmas shifted as the pipeline's scheduler shifts them) on the mini VAE's normalised latents of training-scene
stills, conditioned on their captions through the frozen mini UMT5 in Wan's layout (`decoder.encode_text`).
Captions drop each attribute with probability 1 - `keep` (so "a cat in the kitchen" and "the broken vase" are
prompts it knows, as SynthWorld-CoBSAT's answers name only two attributes), and `empty` of them are "" -- the
unconditional branch classifier-free guidance needs.

The stills are encoded once into a latent pool (`OUT/pool.safetensors`, recomputed only if absent); a step's
samples, captions, noise levels and noise depend on (seed, step) only, so with the optimizer state restored a
resumed run takes exactly the steps an uninterrupted one would. Checkpoints are written to a temporary folder
and renamed. The result, `OUT/decoder/` (transformer + its VAE), is what `MiniDecoder.from_pretrained` loads.

    python -m reasondiff.mini.thinkdiff.decoder_training OUT --vae VAE_FOLDER --steps 6000
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import typer

from ...training.flow_matching import NUM_TRAIN_TIMESTEPS, noisy_latents, sample_sigma, velocity_target
from .checkpoint import resume_state, run_steps
from .decoder import encode_text, transformer_config
from .stills import caption, random_still

SHIFT = 3.0  # the mini scheduler's flow_shift


def drop_attributes(rng: np.random.Generator, attributes: dict[str, str], keep: float = 0.7,
                    empty: float = 0.1) -> str:
    """A caption naming each attribute with probability `keep` (the state only with its object); "" with
    probability `empty` -- and when nothing was kept."""
    if rng.random() < empty:
        return ""
    kept = {k: v for k, v in attributes.items() if rng.random() < keep}
    if "object" not in kept:
        kept.pop("state", None)
    return caption(kept)


@torch.no_grad()
def normalised_latents(vae, images: np.ndarray) -> torch.Tensor:
    """uint8 `[N, H, W, 3]` -> the VAE posterior's mean, normalised by its latents_mean/std, `[N, 16, 1, h, w]`
    (what `WanPipeline` un-normalises before decoding)."""
    video = torch.from_numpy(images).permute(0, 3, 1, 2)[:, :, None].float() / 127.5 - 1.0
    z = vae.encode(video).latent_dist.mode()
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    return (z - mean) / std


def latent_pool(vae, size: int, seed: int, path: Path | None = None, chunk: int = 64) -> tuple[torch.Tensor, list]:
    """`size` training-scene stills as normalised latents, with their attributes; cached at `path`."""
    from safetensors.torch import load_file, save_file

    if path is not None and path.is_file():
        return load_file(path)["latents"], json.loads(path.with_suffix(".json").read_text())
    rng = np.random.default_rng([seed, 23])
    stills = [random_still(rng, held_out=False) for _ in range(size)]
    latents = torch.cat([normalised_latents(vae, np.stack([s.render(64) for s in stills[i:i + chunk]]))
                         for i in range(0, size, chunk)])
    attributes = [s.attributes() for s in stills]
    if path is not None:
        path.with_suffix(".json").write_text(json.dumps(attributes))
        save_file({"latents": latents.contiguous()}, str(path))
    return latents, attributes


def step_batch(pool: tuple[torch.Tensor, list], step: int, seed: int, batch_size: int, keep: float,
               empty: float) -> tuple[torch.Tensor, list[str], torch.Tensor, torch.Tensor]:
    """(latents, captions, sigmas, noise) of one step: a function of (seed, step) alone."""
    latents, attributes = pool
    rng = np.random.default_rng([seed, step])
    idx = rng.integers(len(attributes), size=batch_size)
    captions = [drop_attributes(rng, attributes[i], keep, empty) for i in idx]
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    sigma = torch.tensor([sample_sigma(g, "shifted", SHIFT) for _ in idx])
    x = latents[torch.from_numpy(idx)]
    return x, captions, sigma, torch.randn(x.shape, generator=g)


def flow_loss(transformer, tokenizer, text_encoder, batch) -> torch.Tensor:
    latents, captions, sigma, noise = batch
    context = encode_text(tokenizer, text_encoder, captions)
    prediction = transformer(hidden_states=noisy_latents(latents, noise, sigma), timestep=sigma * NUM_TRAIN_TIMESTEPS,
                             encoder_hidden_states=context, return_dict=False)[0]
    return torch.nn.functional.mse_loss(prediction, velocity_target(latents, noise))


def learning_rate_at(step: int, steps: int, peak: float, cooldown: int) -> float:
    """Constant, then down to 0 in a straight line over the last `cooldown` steps (warmup-stable-decay without the
    warm-up). A constant rate leaves a small DiT's weights jittering around the minimum, which at 64x64 shows as
    smeared agents; the cool-down settles them (docs/thinkdiff.md: agents read 0.30 -> 0.44 after 9 000 steps).
    Being a function of the step alone, extending `steps` with a cool-down resumes a finished run exactly."""
    return peak * min(1.0, (steps - step) / cooldown) if cooldown > 0 else peak


def _components(out: Path, vae: str | Path | None, config: dict, seed: int, learning_rate: float):
    """(transformer, optimizer, step, losses, vae, tokenizer, text encoder), resumed from OUT/checkpoint if there."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5EncoderModel

    from ..pretrained import shipped_path

    root = shipped_path()
    ckpt = out / "checkpoint"
    torch.manual_seed(seed)
    transformer = WanTransformer3DModel.from_pretrained(ckpt / "transformer") if ckpt.is_dir() else \
        WanTransformer3DModel(**config)
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=learning_rate, weight_decay=0.0)
    step, losses = resume_state(out, optimizer)
    vae = AutoencoderKLWan.from_pretrained(vae or root / "vae").eval()
    text_encoder = UMT5EncoderModel.from_pretrained(root / "text_encoder").eval()
    return transformer, optimizer, step, losses, vae, AutoTokenizer.from_pretrained(root / "tokenizer"), text_encoder


def train(out: str | Path, vae: str | Path | None = None, steps: int = 6000, batch_size: int = 32,
          learning_rate: float = 3e-4, seed: int = 0, pool_size: int = 4096, keep: float = 0.7, empty: float = 0.1,
          config: dict | None = None, checkpoint_every: int = 250, cooldown: int = 0, log=print) -> dict:
    """Train (or resume) the decoder; writes OUT/decoder (transformer + VAE) and OUT/result.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = {**transformer_config(), **(config or {})}
    transformer, optimizer, step, losses, vae_model, tokenizer, text_encoder = _components(
        out, vae, config, seed, learning_rate)
    pool = latent_pool(vae_model, pool_size, seed, out / "pool.safetensors")
    transformer.train()

    def loss_at(step: int) -> torch.Tensor:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, steps, learning_rate, cooldown)
        return flow_loss(transformer, tokenizer, text_encoder, step_batch(pool, step, seed, batch_size, keep, empty))

    step = run_steps(transformer, optimizer, loss_at, step, steps, losses, out, checkpoint_every, log,
                     name="transformer", max_grad_norm=1.0)
    transformer.eval().save_pretrained(out / "decoder" / "transformer")
    vae_model.save_pretrained(out / "decoder" / "vae")
    result = {"steps": step, "first_loss": float(np.mean(losses[:50])), "final_loss": float(np.mean(losses[-50:]))}
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(out: Path, config: Path = typer.Option(None, help="YAML of train()'s settings "
                                                       "(configs/thinkdiff_mini_decoder.yaml)."),
         vae: Path = typer.Option(None, help="AutoencoderKLWan folder (default: the shipped mini VAE)."),
         steps: int = None, batch_size: int = None, learning_rate: float = None, seed: int = None,
         lr: float = typer.Option(None, "--lr", hidden=True)) -> None:  # lr: --learning-rate's old name
    """Train (or resume) the text-to-image mini decoder into OUT/decoder."""
    from .config import train_from_command_line

    train_from_command_line(train, out, config, vae=vae, steps=steps, batch_size=batch_size,
                            learning_rate=learning_rate, lr=lr, seed=seed)


if __name__ == "__main__":
    typer.run(main)
