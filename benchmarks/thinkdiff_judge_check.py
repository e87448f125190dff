"""Is the judge or the decoder the limit of SynthWorld-CoBSAT? (docs/thinkdiff.md, issue #19)

Reads held-out stills four ways with the mini judge (and the exact palette parser, for reference):
clean renders, their round trip through the mini VAE, the text-to-image decoder's image of each still's full
caption, and of a two-attribute caption (what the bench's `oracle` row gives the decoder). A named attribute
counts as right when the judge reads the still's value.

    python benchmarks/thinkdiff_judge_check.py OUT.json --decoder DIR [--vae DIR] [--judge DIR] [--n 200] [--guidance 3]
"""

import argparse
import json
import time

import numpy as np
import PIL.Image

from reasondiff.mini.thinkdiff import loading
from reasondiff.mini.thinkdiff.bench import palette_judge, scene_judge
from reasondiff.mini.thinkdiff.stills import ATTRIBUTES, caption, random_still

PAIRS = (("agent", "room"), ("agent", "object"), ("object", "room"), ("object", "state"))


def score(images, truth, named, judges) -> dict:
    out = {}
    for name, judge in judges.items():
        reads = [judge(image) for image in images]
        per = {k: float(np.mean([r[k] == t[k] for r, t, n in zip(reads, truth, named) if k in n] or [np.nan]))
               for k in ATTRIBUTES}
        every = float(np.mean([all(r[k] == t[k] for k in n) for r, t, n in zip(reads, truth, named)]))
        out[name] = {"all_named_right": every, **per}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="JSON file; the first eight images of each decoder set go beside it as PNG")
    ap.add_argument("--decoder", help="ThinkDiff-mini decoder folder (default: the shipped one)")
    ap.add_argument("--vae", help="mini VAE folder (default: the decoder's own)")
    ap.add_argument("--judge", help="SceneJudge folder (default: the shipped judge)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=3.0)
    a = ap.parse_args()
    rng = np.random.default_rng([a.seed, 99])
    stills = [random_still(rng) for _ in range(a.n)]
    truth = [s.attributes() for s in stills]
    from reasondiff.mini.judge import SceneJudge

    judges = {"judge": scene_judge(SceneJudge.from_pretrained(a.judge) if a.judge else None), "palette": palette_judge}
    every = [ATTRIBUTES] * a.n
    clean = [s.render(64) for s in stills]
    result = {"clean_stills": score(clean, truth, every, judges)}
    if a.vae:  # each still as a one-frame clip through the VAE, as the judge's training bank decodes clips
        from diffusers import AutoencoderKLWan

        from reasondiff.mini.judge_data import decode_through

        decoded, _ = decode_through(AutoencoderKLWan.from_pretrained(a.vae).eval(), np.stack(clean)[:, None])
        result["vae_round_trip"] = score(list(decoded[:, 0]), truth, every, judges)
    decoder = loading.load_decoder(a.decoder or loading.shipped("decoder"), a.vae, a.steps, a.guidance)
    t0 = time.time()
    full = [decoder.text(caption(t), 1000 + i) for i, t in enumerate(truth)]
    result["seconds_per_image"] = (time.time() - t0) / a.n
    result["decoder_full_caption"] = score(full, truth, every, judges)
    named = [PAIRS[i % len(PAIRS)] for i in range(a.n)]
    two = [decoder.text(caption({k: t[k] for k in n}), 2000 + i) for i, (t, n) in enumerate(zip(truth, named))]
    result["decoder_two_attribute_caption"] = score(two, truth, named, judges)
    result["settings"] = {"n": a.n, "seed": a.seed, "steps": a.steps, "guidance": a.guidance}
    for key, images in (("full", full[:8]), ("two", two[:8])):
        PIL.Image.fromarray(np.concatenate(images, 1)).save(a.out.replace(".json", f"_{key}.png"))
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
