"""The ceiling any mini model can reach on a SynthWorld-Bench v2 split: its true clips through the mini VAE.

Writes `OUT/<case id>.mp4` (each true clip encoded and decoded by the shipped model's VAE) for
`reasondiff eval score --label truth_vae`, and prints what the VAE alone costs: PSNR of the decoded clip
against the rendered one, over all frames and at the anchor frame (the image's true position).

    python benchmarks/mini_ceiling.py bench/unpaired/benchmark.jsonl outputs/ceiling/unpaired
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from reasondiff.media import save_video
from reasondiff.mini.judge_data import decode_through
from reasondiff.mini.measures import psnr
from reasondiff.mini.pretrained import load_pipeline
from reasondiff.mini.world import EventScript


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.benchmark.read_text().splitlines() if line.strip()]
    vae = load_pipeline().vae
    whole, anchor = [], []
    for start in range(0, len(rows), args.batch):
        batch = rows[start:start + args.batch]
        clips = np.stack([EventScript(**row["world"]).frames(64) for row in batch])
        decoded, _ = decode_through(vae, clips)
        for row, clip, recon in zip(batch, clips, decoded):
            save_video(recon.astype(np.float32) / 255.0, args.out / f"{row['id']}.mp4", fps=8)
            whole.append(psnr(recon, clip))
            anchor.append(psnr(recon[row["position"] - 1], clip[row["position"] - 1]))
    print(f"{len(rows)} true clips of {args.benchmark} through the mini VAE -> {args.out}")
    print(f"PSNR, whole clip: {np.mean(whole):.2f} dB (worst {np.min(whole):.2f}); "
          f"at the anchor frame: {np.mean(anchor):.2f} dB (worst {np.min(anchor):.2f})")


if __name__ == "__main__":
    main()
