"""How well a mini VAE draws SynthWorld: PSNR of held-out clips through it, per object, agent and frame.

Clips come from a seed no training step draws, with objects in the benchmark's held-out bands (the positions
no training clip uses). The worst object class and the middle frames are what #18's targets name: a VAE that
erases the agent while it moves, or leaves a ghost of the fallen tower, loses the story whatever its average.
`--sheet` writes truth / reconstruction rows (every second frame) for the first four clips, chosen by seed
before anyone looks.

    python benchmarks/mini_vae.py outputs/mini/vae/vae --clips 96 --sheet docs/figures/mini_vae.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan
from PIL import Image

from reasondiff.mini.judge_data import decode_through
from reasondiff.mini.world import HELD_OUT_OBJECT_BANDS, sample_script


def psnr(mse: np.ndarray) -> np.ndarray:
    return 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))


def reconstruct(vae, clips: np.ndarray, batch: int = 8) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([decode_through(vae, clips[i:i + batch])[0] for i in range(0, len(clips), batch)])


def report(scripts, clips: np.ndarray, decoded: np.ndarray) -> dict:
    mse = ((decoded.astype(np.float64) - clips) ** 2).mean(axis=(2, 3, 4))  # [clip, frame]
    per_clip = psnr(mse.mean(1))

    def by(attribute: str) -> dict:
        groups: dict[str, list[float]] = {}
        for script, value in zip(scripts, per_clip):
            groups.setdefault(getattr(script, attribute), []).append(value)
        return {name: round(float(np.mean(values)), 2) for name, values in sorted(groups.items())}

    return {"clips": len(scripts), "psnr": round(float(per_clip.mean()), 2), "worst_clip": round(float(per_clip.min()), 2),
            "per_object": by("object"), "per_agent": by("agent"),
            "per_frame": [round(float(v), 1) for v in psnr(mse.mean(0))]}


def contact_sheet(clips: np.ndarray, decoded: np.ndarray, path: Path, scale: int = 2) -> None:
    rows = [np.concatenate(list(video[::2]), axis=1) for pair in zip(clips[:4], decoded[:4]) for video in pair]
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.resize((sheet.width * scale, sheet.height * scale), Image.NEAREST).save(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vae", type=Path, help="an AutoencoderKLWan folder")
    parser.add_argument("--clips", type=int, default=96)
    parser.add_argument("--seed", type=int, default=987)
    parser.add_argument("--sheet", type=Path, default=None, help="write a truth/reconstruction contact sheet here")
    args = parser.parse_args()
    vae = AutoencoderKLWan.from_pretrained(args.vae).eval()
    rng = np.random.default_rng(args.seed)
    scripts = [sample_script(rng, 17, object_bands=HELD_OUT_OBJECT_BANDS) for _ in range(args.clips)]
    clips = np.stack([script.frames(64) for script in scripts])
    decoded = reconstruct(vae, clips)
    print(json.dumps(report(scripts, clips, decoded)))
    if args.sheet:
        contact_sheet(clips, decoded, args.sheet)


if __name__ == "__main__":
    main()
