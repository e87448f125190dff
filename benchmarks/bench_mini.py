"""ReasonDiff-mini end to end on this machine: the README's main job, timed (target, issue #18: <= 10 s for a
17-frame video on 2 CPU cores).

Two figures: the `reasondiff generate` command as a user runs it (a fresh process: imports, loading the shipped
model, the synthworld narrator, the mini's 10 denoising steps without guidance, VAE decoding, writing mp4 + PNG +
script), and the pipeline call alone, once loaded, at the same settings (median of --repeats), split into the
reasondiff and wan modes.

    python benchmarks/bench_mini.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from reasondiff import VisionNarrator
from reasondiff.example import bundled_example
from reasondiff.media import load_image
from reasondiff.mini.pretrained import load_pipeline
from reasondiff.mini.pretrained import MINI_GUIDANCE, MINI_STEPS
from reasondiff.pipelines.narrated import generate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores")

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "reasondiff", "--quiet", "generate", "-o", f"{tmp}/example.mp4"],
                       check=True)
        print(f"reasondiff generate (fresh process, everything included): {time.perf_counter() - start:.1f} s")

    example = bundled_example()
    image = load_image(example.image_path).resize((64, 64))
    narration = VisionNarrator("synthworld:", use_cache=False).narrate(image, example.prompt, 17)
    pipe = load_pipeline()
    pipe.set_progress_bar_config(disable=True)
    for mode in ("reasondiff", "wan"):
        times = []
        for seed in range(args.repeats):
            start = time.perf_counter()
            generate(pipe, image, example.prompt, narration=narration if mode == "reasondiff" else None, mode=mode,
                 num_frames=17, height=64, width=64, num_inference_steps=MINI_STEPS, guidance_scale=MINI_GUIDANCE,
                 generator=torch.Generator().manual_seed(seed), output_type="np")
            times.append(time.perf_counter() - start)
        print(f"pipeline call, mode {mode}: {statistics.median(times):.2f} s (median of {args.repeats})")


if __name__ == "__main__":
    main()
