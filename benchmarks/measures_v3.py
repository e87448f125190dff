"""Measures v2 against v3 on fresh cases: true clips, every adversarial video, every robustness variant.

Cases are drawn the way `reasondiff eval build-synthworld` draws them (`mini.bench._stories`: held-out object
bands, the split's pairs, the image first / middle / last; without the builder's nearest-neighbour check, which
only redraws a few), on a seed given here. Each video is built from the case's own true clip
(`mini.degenerate`, `mini.robustness`) and scored twice: by v3 (the measures in `mini.measures`, the judge in
`--judge`, default the shipped one) and by v2 as it shipped (the measures and the judge's weights at commit V2,
read with `git show`: the figures compare the two releases, not two rule sets on one judge).

    python benchmarks/measures_v3.py --seed 3131 --cases 120 [--judge DIR] [--vae] [--json out.json]

Prints, per video kind, the mean causal order and continuity under v2 and v3, and for each robustness variant
its causal order as a share of the clean truth's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from reasondiff.mini import measures as v3
from reasondiff.mini.bench import SPLITS, _stories
from reasondiff.mini.degenerate import KINDS, degenerate
from reasondiff.mini.judge import SceneJudge
from reasondiff.mini.robustness import VARIANTS, variant

V2 = "0e511964e50c78b97b590dff8deff0e3fb73d4dd"  # a commit with the v2 measures (before issue #31)
ROOT = Path(__file__).resolve().parents[1]


def _git_show(path: str) -> bytes:
    return subprocess.run(["git", "show", f"{V2}:{path}"], cwd=ROOT, check=True, capture_output=True).stdout


def load_v2():
    """The v2 measures module, from git, as `reasondiff.mini._measures_v2` (its relative imports resolve)."""
    spec = importlib.util.spec_from_loader("reasondiff.mini._measures_v2", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "reasondiff.mini"
    sys.modules[spec.name] = module
    exec(compile(_git_show("src/reasondiff/mini/measures.py").decode(), f"measures@{V2}", "exec"), module.__dict__)
    return module


def load_v2_judge() -> SceneJudge:
    """The judge v2 shipped (its weights at commit V2)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="judge-v2-"))
    for name in ("config.json", "diffusion_pytorch_model.safetensors"):
        (folder / name).write_bytes(_git_show(f"src/reasondiff/mini/weights/judge/{name}"))
    return SceneJudge.from_pretrained(folder).eval()


def cases(split: str, count: int, seed: int):
    rng = np.random.default_rng([SPLITS.index(split), seed])
    found = []
    for group in _stories(split, rng, 17):
        for script, end in group:
            found.append((script, {"first": 1, "last": 17, "middle": script.contact + 1}[end]))
        if len(found) >= count:
            return found[:count]


def videos(script, position, number, vae=None):
    """(name, frames) of every video of one case."""
    truth = script.frames(64)
    for kind in KINDS:
        yield kind, degenerate(kind, script, position, seed=number)
    for name in VARIANTS:
        yield name, variant(name, truth)
    if vae is not None:
        from reasondiff.mini.judge_data import decode_through

        yield "truth_vae", decode_through(vae, truth[None])[0][0]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--cases", type=int, default=120)
    parser.add_argument("--split", default="unpaired", choices=SPLITS)
    parser.add_argument("--judge", default=None, help="A judge folder (default: the shipped judge).")
    parser.add_argument("--vae", action="store_true", help="Also the true clips through the shipped mini VAE.")
    parser.add_argument("--json", default=None)
    parser.add_argument("--why", action="store_true", help="Print why v3 failed each true-clip variant.")
    args = parser.parse_args(argv)
    judge = SceneJudge.from_pretrained(args.judge).eval() if args.judge else SceneJudge.shipped()
    vae = None
    if args.vae:
        from reasondiff.mini.pretrained import load_pipeline

        vae = load_pipeline().vae
    old, old_judge = load_v2(), load_v2_judge()
    scores: dict[str, dict[str, list]] = {}
    for number, (script, position) in enumerate(cases(args.split, args.cases, args.seed)):
        image = script.render(position - 1, 64)
        for name, frames in videos(script, position, number, vae):
            row = scores.setdefault(name, {"v2": [], "v3": [], "v2_cont": [], "v3_cont": []})
            for key, module, reader in (("v2", old, old_judge), ("v3", v3, judge)):
                verdict = module.judge_video(reader, frames, image, script, position, script.agent)
                row[key].append(verdict.causal_order)
                row[f"{key}_cont"].append(verdict.continuity)
                if key == "v3" and args.why and not verdict.causal_order and name in ("truth", *VARIANTS, "truth_vae"):
                    print(f"  {name} case {number} ({script.agent} from {'left' if script.from_left else 'right'}, "
                          f"object at {script.object_x:.2f}): {verdict.why}")
    table = {name: {k: float(np.mean(v)) for k, v in row.items()} for name, row in scores.items()}
    for name in (*VARIANTS, "truth_vae"):
        if name in table:
            for key in ("v2", "v3"):
                table[name][f"{key}_share_of_truth"] = table[name][key] / max(table["truth"][key], 1e-9)
    print(f"{args.split}, seed {args.seed}, {args.cases} cases; v2: measures and judge at {V2[:7]}, v3: measures here, "
          f"judge {args.judge or 'shipped'}")
    print("| video | v2 causal order | v3 causal order | v2 continuity | v3 continuity |")
    print("|---|---:|---:|---:|---:|")
    for name, row in table.items():
        share = (f" ({row['v2_share_of_truth']:.3f} / {row['v3_share_of_truth']:.3f} of truth)"
                 if "v3_share_of_truth" in row else "")
        print(f"| {name}{share} | {row['v2']:.3f} | {row['v3']:.3f} | {row['v2_cont']:.3f} | {row['v3_cont']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"seed": args.seed, "cases": args.cases, "split": args.split,
                                               "judge": args.judge or "shipped", "table": table}, indent=2) + "\n")
    return table


if __name__ == "__main__":
    main()
