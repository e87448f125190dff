"""Per-denoising-step cost of ReasonDiffPipeline (full mode) against diffusers' WanImageToVideoPipeline.

Both pipelines share one set of components; they run alternately (A B A B ...) on the same inputs,
steps and seed, so drifting machine load hits both alike. Per-step time comes from the step-end
callback's timestamps (the first step is excluded: warm-up). The last line reads
`per_step_ratio: X.XXX` (ReasonDiff / diffusers, median of pairs).

    python benchmarks/bench_pipeline.py                       # tiny components, CPU
    python benchmarks/bench_pipeline.py --config realistic --device cuda --dtype bfloat16   # on a GPU
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers import AutoencoderKLWan, WanImageToVideoPipeline, WanTransformer3DModel
from PIL import Image

from reasondiff import AlignFormer, Narration, ReasonDiffPipeline
from reasondiff.models import tiny_wan


def components(config: str, dtype: torch.dtype):
    parts = tiny_wan.wan_components(seed=0)
    align = tiny_wan.alignformer(seed=0)
    if config == "medium":  # a DiT whose video tokens outnumber the text tokens, as at real sizes (CPU-friendly)
        parts["transformer"] = WanTransformer3DModel(**{**tiny_wan.transformer_config(), "num_attention_heads": 8,
                                                        "attention_head_dim": 64, "ffn_dim": 2048, "num_layers": 8,
                                                        "added_kv_proj_dim": 512, "rope_max_seq_len": 256})
    if config == "realistic":  # a 1.3B-class DiT shape at random weights (Wan2.1-1.3B widths), for GPU runs
        parts["transformer"] = WanTransformer3DModel(**{**tiny_wan.transformer_config(), "num_attention_heads": 12,
                                                        "attention_head_dim": 128, "ffn_dim": 8960, "num_layers": 30,
                                                        "added_kv_proj_dim": 1536, "rope_max_seq_len": 1024})
        parts["vae"] = AutoencoderKLWan(**{**tiny_wan.vae_config(), "base_dim": 32})
        align = AlignFormer(**{**tiny_wan.alignformer_config(), "hidden_dim": 512})
    if dtype != torch.float32:
        parts["transformer"] = parts["transformer"].to(dtype)
        align = align.to(dtype)
    return parts, align


def timed_steps(pipe, **call) -> tuple[list[float], float]:
    """Step times (step 1 dropped: warm-up, includes encoding) and the whole call's time."""
    stamps = []

    def on_step(p, i, t, kwargs):
        stamps.append(time.perf_counter())
        return kwargs

    start = time.perf_counter()
    pipe(**call, callback_on_step_end=on_step)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    total = time.perf_counter() - start
    stamps = [start] + stamps
    return [b - a for a, b in zip(stamps[1:], stamps[2:])], total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=["tiny", "medium", "realistic"], default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)

    parts, align = components(args.config, dtype)
    wan = WanImageToVideoPipeline(**parts).to(args.device)
    ours = ReasonDiffPipeline(**parts, alignformer=align).to(args.device)
    for pipe in (wan, ours):
        pipe.set_progress_bar_config(disable=True)
    image = Image.new("RGB", (args.size, args.size), (120, 90, 60))
    prompt = "a cat plays in the room"
    third = args.frames // 3
    narration = Narration.from_segments(args.frames, [(1, third, "an intact vase"), (third + 1, 2 * third, "a cat knocks the vase over"),
                                                      (2 * third + 1, args.frames, "the vase lies broken")])
    common = dict(image=image, prompt=prompt, num_frames=args.frames, height=args.size, width=args.size,
                  num_inference_steps=args.steps, guidance_scale=5.0, output_type="latent")

    ratios, wan_steps, our_steps, call_ratios = [], [], [], []
    for pair in range(args.pairs + 1):
        a, wan_call = timed_steps(wan, **common, generator=torch.Generator().manual_seed(pair))
        b, our_call = timed_steps(ours, **common, narration=narration, generator=torch.Generator().manual_seed(pair))
        if pair == 0:
            continue  # warm-up pair
        wan_steps.append(statistics.median(a))
        our_steps.append(statistics.median(b))
        ratios.append(our_steps[-1] / wan_steps[-1])
        call_ratios.append(our_call / wan_call)
    print(f"config: {args.config}  device: {args.device}  dtype: {args.dtype}  frames: {args.frames}  "
          f"size: {args.size}  steps: {args.steps}  pairs: {args.pairs}")
    print(f"diffusers Wan I2V per step: {statistics.median(wan_steps) * 1e3:.1f} ms")
    print(f"ReasonDiff (full) per step: {statistics.median(our_steps) * 1e3:.1f} ms")
    if torch.cuda.is_available() and args.device.startswith("cuda"):
        print(f"peak memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    # whole call: text/image encoding, AlignFormer, all steps (latent output, so no VAE decode); no narrator
    print(f"generation_ratio: {statistics.median(call_ratios):.3f}")
    print(f"per_step_ratio: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
