"""Where a ReasonDiff generation's FLOPs go, at the real Wan2.1-I2V-14B / 480x832 / 81-frame setting.

The analytic model counts what torch's FlopCounterMode counts (matmuls, convolutions, attention;
2 FLOPs per multiply-add) and is checked against it on a scaled-down configuration before the
14B figures are printed, so the shares below are not guesses.

    python benchmarks/flop_account.py
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

TEXT_LEN = 512  # Wan pads every prompt to 512 UMT5 tokens


@dataclass
class Setting:
    frames: int = 81
    height: int = 480
    width: int = 832
    dit_dim: int = 5120
    dit_heads: int = 40
    dit_ffn: int = 13824
    dit_layers: int = 40
    text_dim: int = 4096
    image_dim: int = 1280
    image_tokens: int = 257
    align_dim: int = 1024
    align_stages: int = 2
    align_ff_mult: int = 4
    steps: int = 50
    contexts: int = 4  # distinct narrative contexts (the paper's example has 4 segments)

    @property
    def latent_frames(self) -> int:
        return (self.frames - 1) // 4 + 1

    @property
    def tokens_per_frame(self) -> int:
        return (self.height // 16) * (self.width // 16)

    @property
    def video_tokens(self) -> int:
        return self.latent_frames * self.tokens_per_frame


def dit_forward(s: Setting, contexts: int) -> dict[str, float]:
    """One DiT forward for one sample. `contexts` narrative contexts of 512 tokens (1 = stock Wan)."""
    n, d, f, i, text = s.video_tokens, s.dit_dim, s.dit_ffn, s.image_tokens, contexts * TEXT_LEN
    per_block = {
        "self-attention": 8 * n * d * d + 4 * n * n * d,
        "cross-attention": 4 * n * d * d + 4 * text * d * d + 4 * i * d * d + 4 * n * TEXT_LEN * d + 4 * n * i * d,
        "feed-forward": 4 * n * d * f,
    }
    out = {k: v * s.dit_layers for k, v in per_block.items()}
    time_freq = 256
    out["embeddings+head"] = (
        2 * n * 36 * 4 * d  # patch embedding (36 channels, 1x2x2 patches)
        + 2 * text * (s.text_dim * d + d * d)  # text projection
        + 2 * i * (s.image_dim * s.image_dim + s.image_dim * d)  # image projection
        + 2 * (time_freq * d + d * d + d * 6 * d)  # timestep embedding
        + 2 * n * d * 16 * 4  # output projection
    )
    return out


def alignformer_forward(s: Setting) -> float:
    tokens, dim, frames = s.video_tokens, s.align_dim, s.latent_frames
    flops = 2 * s.tokens_per_frame * 16 * 4 * dim  # anchor patchify + projection (phi_proj)
    flops += 2 * frames * TEXT_LEN * s.text_dim * dim  # narrative projection
    flops += 8 * tokens * dim * dim + 4 * tokens * tokens * dim  # self-attention over all frames
    per_stage = 4 * tokens * dim * dim + 4 * frames * TEXT_LEN * dim * dim + 4 * tokens * TEXT_LEN * dim
    per_stage += 4 * tokens * dim * (s.align_ff_mult * dim)
    flops += s.align_stages * per_stage
    flops += 2 * tokens * dim * 16 * 4  # output projection
    return flops


def generation(s: Setting) -> dict[str, float]:
    """FLOPs of one 50-step CFG generation, split by where they go (VAE and encoders excluded: equal for both)."""
    ours = dit_forward(s, s.contexts)
    stock = dit_forward(s, 1)
    per_step_ours = sum(ours.values()) + sum(stock.values())  # conditional (narratives) + unconditional (negative)
    per_step_wan = 2 * sum(stock.values())
    return {
        "wan_generation": s.steps * per_step_wan,
        "reasondiff_generation": s.steps * per_step_ours + alignformer_forward(s),
        "alignformer": alignformer_forward(s),
        "framewise_cross_attention_extra": s.steps * (per_step_ours - per_step_wan),
        **{f"dit_{k}": s.steps * 2 * v for k, v in stock.items()},
    }


def measured(s: Setting) -> tuple[float, float, float]:
    """FlopCounterMode totals for the DiT (stock and frame-wise) and the AlignFormer at setting `s`."""
    import torch
    from diffusers import WanTransformer3DModel
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from reasondiff import AlignFormer
    from reasondiff.models.attention import FrameLayout, install_framewise_attention

    head_dim = s.dit_dim // s.dit_heads
    dit = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=s.dit_heads, attention_head_dim=head_dim,
                                in_channels=36, out_channels=16, text_dim=s.text_dim, freq_dim=256, ffn_dim=s.dit_ffn,
                                num_layers=s.dit_layers, image_dim=s.image_dim, added_kv_proj_dim=s.dit_dim,
                                rope_max_seq_len=64).eval()
    hidden = torch.randn(1, 36, s.latent_frames, s.height // 8, s.width // 8)
    image = torch.randn(1, s.image_tokens, s.image_dim)
    t = torch.tensor([500.0])
    results = []
    # The math attention backend runs attention as batched matmuls, which the counter sees; fused CPU/GPU
    # kernels would be missing from its totals.
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        for contexts in (1, s.contexts):
            text = torch.randn(1, contexts * TEXT_LEN, s.text_dim)
            state = install_framewise_attention(dit)
            layout = FrameLayout(torch.arange(s.latent_frames)[None] % contexts, s.image_tokens, TEXT_LEN)
            with FlopCounterMode(display=False) as counter, state.use(layout if contexts > 1 else None):
                dit(hidden, t, text, image)
            results.append(counter.get_total_flops())
        align = AlignFormer(text_dim=s.text_dim, hidden_dim=s.align_dim, num_cross_stages=s.align_stages,
                            ff_mult=s.align_ff_mult).eval()
        with FlopCounterMode(display=False) as counter:
            align(torch.randn(1, 16, s.height // 8, s.width // 8), torch.tensor([0]),
                  torch.randn(1, s.latent_frames, TEXT_LEN, s.text_dim))
        results.append(counter.get_total_flops())
    return results[0], results[1], results[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contexts", type=int, default=4, help="distinct narrative contexts in the script")
    args = parser.parse_args()

    small = Setting(frames=9, height=64, width=96, dit_dim=128, dit_heads=4, dit_ffn=256, dit_layers=2, text_dim=64,
                    image_dim=32, image_tokens=17, align_dim=64, contexts=3)
    stock, framewise, align = measured(small)
    print("check on a scaled-down config (analytic vs torch FlopCounterMode):")
    for name, analytic, counted in (("DiT, stock", sum(dit_forward(small, 1).values()), stock),
                                    ("DiT, frame-wise", sum(dit_forward(small, small.contexts).values()), framewise),
                                    ("AlignFormer", alignformer_forward(small), align)):
        print(f"  {name:16s} analytic {analytic:.4e}  counted {counted:.4e}  ratio {analytic / counted:.4f}")

    s = Setting(contexts=args.contexts)
    g = generation(s)
    total = g["reasondiff_generation"]
    print(f"\nWan2.1-I2V-14B, {s.height}x{s.width}, {s.frames} frames ({s.video_tokens} tokens), {s.steps} steps, "
          f"CFG, {s.contexts} narrative contexts:")
    print(f"  Wan2.1 generation:       {g['wan_generation'] / 1e15:9.1f} PFLOP")
    print(f"  ReasonDiff generation:   {total / 1e15:9.1f} PFLOP")
    for key in ("dit_self-attention", "dit_cross-attention", "dit_feed-forward", "dit_embeddings+head"):
        print(f"    {key[4:]:22s} {g[key] / total:7.2%}")
    print(f"    {'AlignFormer (once)':22s} {g['alignformer'] / total:7.4%}")
    print(f"    {'frame-wise text extra':22s} {g['framewise_cross_attention_extra'] / total:7.4%}")
    overhead = total / g["wan_generation"] - 1
    print(f"analytic_overhead: {overhead:.4%}")


if __name__ == "__main__":
    main()
