"""Text-encoding cost of a narration with and without deduplication of repeated descriptions.

A narrator's 81 descriptions repeat in segments (the paper's Fig. 6 example has 4). ReasonDiff
encodes each distinct description once (`NarrativeContexts`); the naive way encodes all 81.

    python benchmarks/bench_text_encoding.py            # a UMT5 of base width on CPU (random weights)
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import UMT5Config, UMT5EncoderModel

from reasondiff import Narration
from reasondiff.models import tiny_wan
from reasondiff.conditioning import NarrativeContexts, encode_texts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tokenizer = tiny_wan.tokenizer()
    torch.manual_seed(0)
    encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=args.d_model, d_kv=64,
                                          d_ff=4 * args.d_model, num_layers=args.layers, num_heads=args.d_model // 64)).eval()
    narration = Narration.from_segments(81, [(1, 20, "an intact vase stands on the floor of a quiet room"),
                                             (21, 45, "a cat enters the room and knocks the vase over"),
                                             (46, 70, "the cat runs away from the broken vase"),
                                             (71, 81, "the broken vase lies in pieces on the floor")])
    contexts = NarrativeContexts.from_latent_descriptions(narration.latent_descriptions())

    def timed(texts):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            with torch.no_grad():
                encode_texts(tokenizer, encoder, texts, 512)
            best = min(best, time.perf_counter() - start)
        return best

    naive = timed(narration.descriptions)
    dedup = timed(contexts.texts)
    print(f"UMT5 d_model={args.d_model} layers={args.layers}, 512 tokens per text, CPU, best of {args.repeats}")
    print(f"all 81 descriptions:          {naive:.3f} s")
    print(f"{len(contexts.texts)} distinct descriptions:       {dedup:.3f} s")
    print(f"latent-frame contexts built:  {len(contexts.contexts)} for {len(contexts.frame_to_context)} latent frames")
    print(f"dedup_speedup: {naive / dedup:.1f}x")


if __name__ == "__main__":
    main()
