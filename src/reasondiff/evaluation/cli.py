"""`reasondiff eval`: run the benchmark, write the paper's tables and chart, serve and aggregate the user study.

Register with `app.add_typer(reasondiff.evaluation.cli.app, name="eval")`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import typer

from ..console import EXIT_FAILED
from ..console import fail as _fail
from ..device import DEVICE_HELP, resolve_device
from ..narrator.cli import TIMEOUT_HELP
from ..pipelines.settings import MODEL_HELP, SIZE_HELP
from ..pipelines.registry import default_model
from .metrics import METRICS, OPT_IN_METRICS

app = typer.Typer(
    name="eval",
    help="Evaluate as the paper does: VBench metrics, CLIP scores, Table 1, Fig. 5a, and a user study.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


FLOW_HELP = "Dynamic Degree flow: auto (raft on CUDA with torchvision, else farneback), farneback or raft."
INTERPOLATOR_HELP = ("Motion Smoothness interpolator: auto (VBench's amt-s when vbench and its weights are installed, "
                     "else farneback), amt-s, farneback or linear.")


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _load_pipeline(model: str, alignformer: Path | None, lora: Path | None, device: str, dtype: str):
    from ..pipelines.loading import load_pipeline

    pipe, _ = load_pipeline(model, alignformer, lora, device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# Over 60 lines only by its 25 typer options (one per line: the interface); its body is 30 lines.
@app.command()
def run(
    manifest: Path = typer.Option(..., "--manifest", "-m", help="Benchmark JSONL: id, image, prompt, [captions, position]."),
    out: Path = typer.Option(Path("eval_runs/run"), "--out", "-o", help="Run folder (results.jsonl, videos/, summary.json)."),
    model: str = typer.Option(default_model(), help=MODEL_HELP),
    alignformer: Path = typer.Option(None, help="AlignFormer folder for a plain Wan2.1-I2V --model."),
    lora: Path = typer.Option(None, help="Stage-1 LoRA weights for the DiT."),
    modes: str = typer.Option("reasondiff,wan", help="Comma-separated modes: reasondiff, wan, rewrite, "
                              "no_enhanced_latents, no_multi_prompt."),
    timeout: float = typer.Option(None, "--timeout", min=0.001, help=TIMEOUT_HELP),
    narrator: str = typer.Option(None, help="MLLM that writes narrations / rewrites prompts (openai:gpt-4o, ...). "
                                 "Without it, narrated modes use the manifest's ground truth (an oracle)."),
    metrics: str = typer.Option(None, help=f"Comma-separated subset of {','.join(METRICS)}. Default: the paper's "
                                "(imaging_quality only when pyiqa is installed); on request: sharpness (Imaging Quality's "
                                "offline proxy) and plugged-in measures (SynthWorld's judge: see eval score)."),
    clip: str = typer.Option("openai/clip-vit-large-patch14", help="CLIP model folder or hub id, or 'tiny'."),
    musiq: str = typer.Option(None, help="MUSIQ-SPAQ checkpoint (musiq_spaq_ckpt-358bb6af.pth); default: pyiqa downloads it."),
    flow: str = typer.Option("auto", help=FLOW_HELP),
    interpolator: str = typer.Option("auto", help=INTERPOLATOR_HELP),
    frames: int = typer.Option(None, "--frames", "--num-frames", help=SIZE_HELP["frames"]),
    height: int = typer.Option(None, help=SIZE_HELP["height"]),
    width: int = typer.Option(None, help=SIZE_HELP["width"]),
    steps: int = typer.Option(None, help=SIZE_HELP["steps"]),
    guidance: float = typer.Option(None, "--guidance", "--guidance-scale", help=SIZE_HELP["guidance"]),
    fps: int = typer.Option(16, help="Frame rate of the videos (Wan2.1: 16); Dynamic Degree samples ~8 fps from it."),
    seed: int = typer.Option(0, help="Base seed; each case's seed derives from it and the case id."),
    video_format: str = typer.Option("mp4", "--video-format", help="mp4 or gif."),
    label: str = typer.Option(None, help="Report this run's rows as method LABEL instead of the mode (a single "
                              "mode only), e.g. --label no_aux_loss for the paper's stage-1-only checkpoint."),
    limit: int = typer.Option(None, help="Only the first N cases (a quick look)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    dtype: str = typer.Option("auto", help="'auto' (bfloat16 on CUDA, float32 on CPU), 'float32', 'bfloat16'."),
) -> None:
    """Generate every case in every mode, score it, and write per-case rows + a summary (resumable).

    Example:

      reasondiff eval run -m bench/benchmark.jsonl -o runs/activitynet --modes reasondiff,wan,rewrite \\
          --narrator openai:gpt-4o --model Wan-AI/Wan2.1-I2V-14B-480P-Diffusers --alignformer ckpt/alignformer
    """
    from ..pipelines.settings import prepare_generation
    from .runner import GenerationSettings, check_run, check_run_folder, run_benchmark

    try:
        job = prepare_generation(model, _split(modes), narrator=narrator, frames=frames, height=height, width=width,
                                 steps=steps, guidance=guidance, fps=fps)
        cases = _cases(manifest, limit)
        settings = GenerationSettings(model=model, num_frames=job.frames, height=job.height, width=job.width,
                                      steps=job.steps, guidance_scale=job.guidance, fps=fps, seed=seed, narrator=narrator,
                                      video_format=video_format, label=label)
        writer = _open_narrator(narrator, timeout)
        check_run(cases, job.modes, settings, writer)
        check_run_folder(out, cases, job.modes, settings)  # every file it writes, before any model loads
        scorers = _run_metrics(metrics, clip=clip, musiq=musiq, interpolator=interpolator, flow=flow,
                               device=resolve_device(device, dtype)[0])  # the loader resolves dtype the same way
    except (ValueError, ImportError, OSError) as err:
        _fail(str(err))
    for notice in job.notices:
        typer.secho(notice, err=True, fg=typer.colors.YELLOW)
    from ..narrator import NarratorError

    try:
        result = run_benchmark(
            cases, job.modes, out, pipeline_factory=lambda: _load_pipeline(model, alignformer, lora, device, dtype),
            metrics=scorers, settings=settings, narrator=writer, log=typer.echo,
        )
    except OSError as err:  # a full disk, a file-size limit: the video being written is not left cut short
        _fail(str(err), EXIT_FAILED)  # rows finished before the failure stay in results.jsonl; a rerun resumes
    except (ValueError, ImportError, NarratorError) as err:
        _fail(str(err))  # rows finished before the failure stay in results.jsonl; rerunning resumes after them
    typer.echo(f"generated {result.generated}, skipped {result.skipped} already done; "
               f"wrote {result.results} and {result.summary}")


def _cases(manifest: Path, limit: int | None):
    from .manifest import read_manifest

    cases = read_manifest(manifest)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be at least 1, got {limit}")
        cases = cases[:limit]
    return cases


def _open_narrator(narrator: str | None, timeout: float | None):
    if narrator is None:
        return None
    from ..narrator import NarratorError, VisionNarrator

    try:
        return VisionNarrator(narrator, timeout=timeout)
    except NarratorError as err:
        raise ValueError(f"narrator {narrator!r}: {err}") from err


def _run_metrics(metrics: str | None, **options):
    """The scorers `eval run` was asked for; by default the paper's, Imaging Quality only when pyiqa is installed
    (and a note saying so)."""
    from .metrics import build_metrics

    names = _split(metrics)
    skip_quality = not names and importlib.util.find_spec("pyiqa") is None
    if not names:
        names = [m for m in METRICS if m not in OPT_IN_METRICS and (m != "imaging_quality" or not skip_quality)]
    scorers = build_metrics(names, **options)
    if skip_quality:
        typer.secho("note: pyiqa is not installed, so Imaging Quality is skipped (pip install pyiqa to add it)",
                    err=True, fg=typer.colors.YELLOW)
    return scorers


def _check_outputs(folder: Path, *names: str) -> None:
    """ValueError, before any metric loads, when a file the command rewrites in `folder` cannot be written (a
    file in the folder's place, a folder or an immutable file in the file's)."""
    from ..media import check_outputs

    check_outputs(*(folder / name for name in names))


OFFLINE_METRICS = ("sharpness", "motion_smoothness", "dynamic_degree")  # need no downloaded weights


@app.command()
def score(
    benchmark: Path = typer.Option(..., "--benchmark", "-b", help="Benchmark JSONL (e.g. from `eval build-synthworld`)."),
    videos: Path = typer.Option(..., help="Folder holding <case id>.mp4 for every case (any size: resized)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for results.jsonl and summary.json."),
    label: str = typer.Option("method", help="The method name the rows report (what `eval report` prints)."),
    metrics: str = typer.Option(None, help="Comma-separated metrics. Default: sharpness, motion_smoothness, "
                                "dynamic_degree and every plugged-in measure (SynthWorld: anchor_psnr, "
                                "text_adherence, causal_order, continuity)."),
    fps: float = typer.Option(8, help="Frame rate of the videos (Dynamic Degree samples ~8 fps from it)."),
    clip: str = typer.Option("openai/clip-vit-large-patch14", help="CLIP folder or hub id, for clip_text/clip_image."),
    flow: str = typer.Option("auto", help=FLOW_HELP),
    interpolator: str = typer.Option("auto", help=INTERPOLATOR_HELP),
    device: str = typer.Option("auto", help=f"Device for the metrics' networks: {DEVICE_HELP}"),
) -> None:
    """Score any model's videos of a benchmark: per-case rows and mean with a bootstrap 95 % interval (resumable).

    Example:

      reasondiff eval score -b bench/unpaired/benchmark.jsonl --videos my_model_videos -o scores/my_model --label mine
    """
    from ..pipelines.settings import check_numbers
    from .manifest import read_manifest
    from .metrics import build_metrics
    from .score import score_videos

    try:
        check_numbers(fps=fps)
        _check_outputs(out, "score.json", "results.jsonl", "summary.json")
        names = _split(metrics) or [*OFFLINE_METRICS, *(m for m in OPT_IN_METRICS if m not in OFFLINE_METRICS)]
        scorers = build_metrics(names, clip=clip, interpolator=interpolator, flow=flow,
                                device=resolve_device(device)[0])
        summary = score_videos(read_manifest(benchmark), videos, out, scorers, label=label, fps=fps, log=typer.echo)
    except (ValueError, ImportError, OSError) as err:
        _fail(str(err))
    import json

    for name, entry in json.loads(summary.read_text()).items():
        low, high = entry["ci95"]
        typer.echo(f"{METRICS[name]:>18}: {entry['mean']:.3f}  [{low:.3f}, {high:.3f}]  (n={entry['n']})")
    typer.echo(f"wrote {out / 'results.jsonl'} and {summary}")


@app.command()
def rescore(
    run_dir: Path = typer.Argument(..., help="An `eval run` folder (results.jsonl, videos/, run.json)."),
    manifest: Path = typer.Option(..., "--manifest", "-m", help="The benchmark JSONL the run was made from."),
    metrics: str = typer.Option(..., help=f"Comma-separated metrics to add, from {','.join(METRICS)}."),
    clip: str = typer.Option("openai/clip-vit-large-patch14", help="CLIP model folder or hub id, or 'tiny'."),
    musiq: str = typer.Option(None, help="MUSIQ-SPAQ checkpoint; default: pyiqa downloads it."),
    flow: str = typer.Option("auto", help=FLOW_HELP),
    interpolator: str = typer.Option("auto", help=INTERPOLATOR_HELP),
    device: str = typer.Option("auto", help=f"Device for the metrics' networks: {DEVICE_HELP}"),
) -> None:
    """Add metrics to a finished run from its saved videos, without generating again (resumable).

    Example:

      reasondiff eval rescore runs/mini -m bench/benchmark.jsonl --metrics sharpness
    """
    from ..media import OutputError
    from .manifest import read_manifest
    from .metrics import build_metrics
    from .runner import rescore_run

    try:
        names = _split(metrics)
        if not names:
            raise ValueError("name at least one metric with --metrics")
        _check_outputs(run_dir, "results.jsonl", "run.json", "summary.json")
        scorers = build_metrics(names, clip=clip, musiq=musiq, interpolator=interpolator, flow=flow,
                                device=resolve_device(device)[0])
        scored = rescore_run(run_dir, read_manifest(manifest), scorers, log=typer.echo)
    except OutputError as err:  # rows, run.json and summary.json are placed as one set: the previous set stays
        _fail(str(err), EXIT_FAILED)
    except (ValueError, ImportError, OSError) as err:
        _fail(str(err))
    typer.echo(f"scored {scored} row(s) of {run_dir / 'results.jsonl'}; summary.json and run.json updated")


@app.command()
def report(
    runs: list[Path] = typer.Argument(..., help="Run folders (or results.jsonl files) to put side by side."),
    out: Path = typer.Option(Path("eval_report"), "--out", "-o", help="Folder for table.md, table.csv, ablation.png."),
    study: Path = typer.Option(None, help="Study database: adds the User Rank column."),
    methods: str = typer.Option(None, help="Comma-separated methods in table order (default: all, ReasonDiff last)."),
    reference: str = typer.Option("reasondiff", help="The full model the ablation chart divides by."),
    baseline: str = typer.Option("wan", help="The method differences.md subtracts, case by case (plain I2V)."),
    digits: int = typer.Option(3, help="Decimals in the Markdown table."),
) -> None:
    """Write Table 1 (Markdown + CSV), the same with 95 % intervals, paired differences from a baseline, and the
    Fig. 5a ablation chart (PNG) from `eval run` / `eval score` folders."""
    from .report import add_user_rank, bootstrap_note, summarise, write_report
    from .runner import read_results

    try:
        rows = [row for path in runs for row in read_results(path)]
        summary = summarise(rows)
        if study is not None:
            from .study.store import aggregate

            summary = add_user_rank(summary, aggregate(study))
        written = write_report(summary, out, _split(methods) or None, reference, digits, rows=rows, baseline=baseline)
    except ValueError as err:
        _fail(str(err))
    except OSError as err:  # the previous report stays whole (write_report places its files as one set)
        _fail(str(err), EXIT_FAILED)
    typer.echo(written["markdown"].read_text(), nl=False)
    typer.echo(bootstrap_note(summary))
    typer.echo("wrote " + ", ".join(str(p) for p in written.values()))


@app.command("study")
def study_serve(
    runs: list[Path] = typer.Argument(None, help="Run folders whose videos to compare (needed when --db is new)."),
    db: Path = typer.Option(Path("study.sqlite"), help="Study database; created from the runs if missing."),
    methods: str = typer.Option(None, help="Comma-separated methods to compare (the paper: 5). Default: all."),
    questions: int = typer.Option(10, help="Questions per participant (the paper: 10)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port (0: any free port)."),
) -> None:
    """Serve the ranking study (Appendix B.3): one question per page, videos in a random order per participant."""
    from .study import create_study, make_server

    try:
        if not db.exists():
            if not runs:
                raise ValueError(f"{db} does not exist: give the run folders to build the study from")
            count = create_study(db, runs, _split(methods) or None, questions)
            typer.echo(f"created {db} with {count} questions")
        elif runs:
            typer.echo(f"{db} exists; serving it as it is (the run folders are not re-read)")
        server = make_server(db, host, port)
    except (ValueError, OSError) as err:
        _fail(str(err))
    typer.echo(f"study at http://{host}:{server.server_address[1]}/  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@app.command("study-results")
def study_results(db: Path = typer.Option(Path("study.sqlite"), help="Study database.")) -> None:
    """Print the User Rank (mean ± std of ranks, 1 = best) per method."""
    from .report import DISPLAY_NAMES
    from .study.store import aggregate

    try:
        ranks = aggregate(db)
    except ValueError as err:
        _fail(str(err))
    for method, entry in sorted(ranks.items(), key=lambda item: item[1]["mean"]):
        typer.echo(f"{DISPLAY_NAMES.get(method, method)}\t{entry['mean']:.3f} ± {entry['std']:.3f}\t(n={entry['n']})")
