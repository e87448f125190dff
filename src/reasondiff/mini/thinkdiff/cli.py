"""`reasondiff thinkdiff bench`: SynthWorld-CoBSAT from the command line.

It lives with the mini world it measures (the `thinkdiff` package stays below `mini`); the top-level command line
mounts it on the `thinkdiff` group.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ...thinkdiff.cli import TINY_NOTICE
from ...console import fail as _fail


def bench(
    shots: int = typer.Option(2, help="Demonstrations per episode: 1, 2 or 4."),
    cases: int = typer.Option(100, help="Episodes per task (8 tasks)."),
    seed: int = typer.Option(0, help="Seeds the episodes, the held-out scenes and the decoder's noise."),
    out: Path = typer.Option(..., help="cases.jsonl, summary.json, details.json, example images; reruns resume."),
    vlm: str = typer.Option(None, help="Mini VLM folder or 'tiny' (default: the shipped one)."),
    aligner: Path = typer.Option(None, help="Aligner folder (default: the shipped one; untrained with --vlm tiny)."),
    decoder: str = typer.Option(None, help="Text-to-image mini decoder folder or 'tiny' (default: the shipped one)."),
    vae: Path = typer.Option(None, help="VAE folder for the decoder (default: its own, else the mini's)."),
    judge: str = typer.Option("shipped", help="shipped (the mini's learned judge), palette (exact on renders) or a "
                                              "SceneJudge folder (one trained for another VAE)."),
    methods: str = typer.Option(",".join(("thinkdiff", "raw_concat", "query_only", "vlm_text", "oracle",
                                          "random_tokens")), help="Comma-separated methods."),
    steps: int = typer.Option(20, help="Denoising steps."),
    max_new_tokens: int = typer.Option(32, help="Tokens the VLM may write per answer."),
) -> None:
    """SynthWorld-CoBSAT: every method's image per episode, judged; accuracy with 95 % intervals in summary.json."""
    from . import loading

    if judge not in ("shipped", "palette") and not Path(judge).is_dir():
        _fail(f"--judge must be shipped, palette or a SceneJudge folder; {judge} is none of them")
    tiny_run = vlm == "tiny"
    paths = {"vlm": vlm or loading.shipped("vlm"), "decoder": decoder or loading.shipped("decoder"),
             "aligner": aligner or (None if tiny_run else loading.shipped("aligner"))}
    absent = loading.missing(paths)
    if absent:
        _fail(f"not found: {', '.join(absent)} (train them with scripts/train_thinkdiff_mini.sh, or use tiny)")
    if tiny_run or paths["decoder"] == "tiny":
        typer.echo(TINY_NOTICE)
    _run_bench(paths, vae, judge, [m.strip() for m in methods.split(",") if m.strip()], shots, cases, seed, out,
               steps, max_new_tokens)


def _run_bench(paths: dict, vae, judge: str, methods: list[str], shots: int, cases: int, seed: int, out: Path,
               steps: int, max_new_tokens: int) -> None:
    from . import bench as world_bench
    from . import loading
    from ..judge import SceneJudge
    from .reasoner import ThinkDiffReasoner

    if shots < 1 or cases < 1:
        _fail("--shots and --cases must be at least 1")
    decoder = loading.load_decoder(paths["decoder"], vae, steps)
    model, processor = loading.load_vlm(paths["vlm"])
    align = loading.load_aligner(paths["aligner"], model, decoder.pipe.text_encoder)
    reasoner = ThinkDiffReasoner(model, processor, align, max_new_tokens)
    read = world_bench.palette_judge if judge == "palette" else world_bench.scene_judge(
        None if judge == "shipped" else SceneJudge.from_pretrained(judge))
    try:
        summary = world_bench.run(shots, cases, seed, out, reasoner, decoder, read, methods)
    except ValueError as err:
        _fail(str(err))
    for method, row in summary.items():
        lo, hi = row["ci95"]
        typer.echo(f"{method:14s} {row['accuracy']:.3f}  [{lo:.3f}, {hi:.3f}]")
    typer.echo(f"wrote {out / 'summary.json'}")
