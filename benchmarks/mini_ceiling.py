"""What the judge's columns and Sharpness read on the *true* clips of the mini benchmark, rendered and after the mini VAE:
the ceiling any mini model can reach, and how much of it the VAE alone costs.

Each case's real clip is re-rendered from its ground truth (agent, object, room, timing), scored as if it were
a generated video (Anchor PSNR at the true position, Text Adherence, Causal Order, Sharpness), then encoded and decoded by
the shipped model's VAE and scored again.

    python benchmarks/mini_ceiling.py outputs/mini_eval/bench/benchmark.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from PIL import Image

from reasondiff.evaluation.sharpness import Sharpness
from reasondiff.mini.judge import SceneJudge, score_video
from reasondiff.mini.pretrained import load_pipeline
from reasondiff.mini.splits import SPLIT_SEEDS, TRAIN_PAIRS
from reasondiff.mini.world import sample_script
from reasondiff.pipelines.conditioning import decode_latents, encode_video


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.manifest.read_text().splitlines() if line.strip()]
    info = json.loads((args.manifest.parent / "info.json").read_text())
    if info["split"] != "test":
        raise SystemExit("this script re-renders the test split (the other splits draw their scripts differently)")
    rng = np.random.default_rng(SPLIT_SEEDS["test"])  # write_benchmark's draws, in its order
    vae = load_pipeline().vae
    judge = SceneJudge.shipped()
    scores = {"rendered": [], "through the VAE": []}
    for row in rows:
        script = sample_script(rng, row["num_frames"], pairs=set(TRAIN_PAIRS))
        rng.integers(3)  # the benchmark's draw of the image position
        assert (script.agent, script.object, script.room) == (row["agent"], row["object"], row["room"]), row["id"]
        frames = script.frames(info["size"])
        video = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
        with torch.no_grad():
            decoded = decode_latents(vae, encode_video(vae, video))
        recon = ((decoded[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
        condition = frames[row["position"] - 1]
        for name, clip in (("rendered", frames), ("through the VAE", recon)):
            s = score_video(judge, clip, condition, row["position"], row["agent"])
            sharp = Sharpness()(clip, Image.fromarray(condition))
            scores[name].append((min(s.anchor_psnr, 60.0), float(s.agent_seen), float(s.causal_order), sharp))
    print(f"{len(rows)} cases of {args.manifest}")
    for name, values in scores.items():
        v = np.array(values)
        print(f"{name:>16}: anchor_psnr {v[:, 0].mean():.2f} ± {v[:, 0].std():.2f}, "
              f"text_adherence {v[:, 1].mean():.3f}, causal_order {v[:, 2].mean():.3f}, sharpness {v[:, 3].mean():.3f}")


if __name__ == "__main__":
    main()
