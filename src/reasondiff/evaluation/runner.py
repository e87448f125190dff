"""`eval run`: generate every (case, mode) of a benchmark, score it, and append one JSON line per result.

Layout of the output folder:

    run.json                generation settings and metric names (a rerun with others is refused)
    results.jsonl           one row per finished (case, mode), flushed and fsynced as it finishes
    videos/<mode>/<id>.mp4  the generated videos (the user study serves these)
    summary.json            mean ± std per mode and metric, rewritten at the end of every run

Adding a metric to a finished run: `rescore_run` scores the saved videos and rewrites the rows (no generation).

Resuming: rows already in results.jsonl are skipped, so an interrupted run continues where it stopped and
produces the same rows it would have produced in one go (each case's seed depends on the case id and
`--seed` only, never on the order or on what ran before). A half-written last line (a crash mid-write) is
dropped and that result regenerated.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..data.jsonl import read_jsonl, write_atomically
from ..pipelines.settings import NARRATED_MODES
from .manifest import EvalCase
from .metrics import METRICS, measured_with
from .score import case_sample, finite_score, image_key, settings_changes
from .frame_format import read_video, to_uint8_frames

RESULTS = "results.jsonl"


@dataclass(frozen=True)
class GenerationSettings:
    """What a video depends on besides the case and mode; stored in run.json and checked on resume."""

    model: str = "tiny"
    num_frames: int = 81
    height: int = 480
    width: int = 832
    steps: int = 50
    guidance_scale: float = 5.0
    negative_prompt: str | None = None
    fps: int = 16  # Wan2.1's frame rate; Dynamic Degree samples the video at ~8 fps from it
    seed: int = 0
    narrator: str | None = None  # the narrator spec, or None for the ground-truth narration
    video_format: str = "mp4"
    label: str | None = None  # the method name rows report instead of the mode (runs of a single mode only)


def case_seed(case_id: str, seed: int) -> int:
    """The seed of one case, the same for every mode (a fair comparison) and independent of case order."""
    return (seed + zlib.crc32(case_id.encode())) % 2**31


def _read_done(path: Path) -> set[tuple[str, str]]:
    """(case id, mode) pairs already written; a torn last line is cut off so appends stay one-row-per-line."""
    return {(row["case_id"], row["mode"]) for row in read_jsonl(path, repair=True)}


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a run folder's results.jsonl (or of the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS
    if not path.is_file():
        raise ValueError(f"no results found at {path}: run `reasondiff eval run` first")
    return read_jsonl(path)


def _check_settings(out_dir: Path, settings: GenerationSettings, metrics: Sequence[Any]) -> None:
    """Refuse to mix rows made with different generation settings or metric sets in one run folder."""
    path = out_dir / "run.json"
    metric_names = [metric.name for metric in metrics]
    current = {**asdict(settings), "metrics": metric_names}
    if path.exists():
        stored = json.loads(path.read_text())
        stored = {**stored["settings"], "metrics": stored.get("metrics")}
        changed = settings_changes(stored, current)
        if changed:
            raise ValueError(f"{out_dir} holds a run made with other settings ({'; '.join(changed)}); "
                             "rerun with the same settings to resume, or choose a new output folder")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps({"settings": asdict(settings), "metrics": metric_names,
                                        "measured_with": measured_with(metrics)}, indent=2) + "\n")


@dataclass
class RunResult:
    generated: int
    skipped: int
    results: Path
    summary: Path


def check_run(cases: Sequence[EvalCase], modes: Sequence[str], settings: GenerationSettings, narrator) -> tuple:
    """ValueError for a run that would fail later (an unknown mode, a label over several modes, a case without the
    ground truth an oracle narration needs, a video format we cannot write); returns the modes as a tuple."""
    from ..pipelines.settings import check_modes

    modes = check_modes(modes, narrator)
    if settings.label is not None and len(modes) != 1:
        raise ValueError(f"a label names one method: run a single mode with it, got {len(modes)} modes")
    if narrator is None and any(m in NARRATED_MODES for m in modes):
        for case in cases:  # fail before generating anything, not at case 300
            case.ground_truth_narration(settings.num_frames)
    if settings.video_format not in ("mp4", "gif"):
        raise ValueError(f"video format must be mp4 or gif, got {settings.video_format!r}")
    return modes


def check_run_folder(out_dir: str | Path, cases: Sequence[EvalCase], modes: Sequence[str],
                     settings: GenerationSettings) -> None:
    """ValueError, before any model loads, when the run folder's files cannot be written: a file where the folder
    should be, a folder or an immutable file in place of results.jsonl or summary.json, an unwritable videos/."""
    from ..media import check_outputs

    out_dir = Path(out_dir)
    paths = [out_dir / RESULTS, out_dir / "summary.json"]
    if not (out_dir / "run.json").is_file():  # written only by a new run; a resumed run reads it
        paths.append(out_dir / "run.json")
    if cases:
        paths += [out_dir / "videos" / mode / f"{cases[0].id}.{settings.video_format}" for mode in modes]
    check_outputs(*paths)


def run_benchmark(
    cases: Sequence[EvalCase],
    modes: Sequence[str],
    out_dir: str | Path,
    *,
    pipeline: Any | None = None,
    pipeline_factory: Callable[[], Any] | None = None,
    metrics: Sequence[Any],
    settings: GenerationSettings = GenerationSettings(),
    narrator: Any | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> RunResult:
    """Generate, score and record every missing (case, mode).

    Args:
        pipeline: a `ReasonDiffPipeline` (or anything called like one).
        pipeline_factory: instead of `pipeline`, a zero-argument loader called only if something is left to
            generate (a finished run resumes without loading a 14B model).
        metrics: adapters from `reasondiff.evaluation.metrics` (`build_metrics`).
        narrator: writes the narration (and rewrites the prompt for "rewrite"); without one, modes that need a
            narration use the case's ground truth (an oracle narration), and "rewrite" is refused.
    """
    from .report import summarise

    if (pipeline is None) == (pipeline_factory is None):
        raise ValueError("pass exactly one of pipeline= and pipeline_factory=")
    modes = check_run(cases, modes, settings, narrator)

    out_dir = Path(out_dir)
    _check_settings(out_dir, settings, metrics)
    results = out_dir / RESULTS
    done = _read_done(results)
    todo = [(case, mode) for case in cases for mode in modes if (case.id, mode) not in done]
    skipped = len(cases) * len(modes) - len(todo)
    if todo:
        pipe = pipeline if pipeline is not None else pipeline_factory()
        with results.open("a") as handle:
            for number, (case, mode) in enumerate(todo, start=1):
                row = _generate_and_score(pipe, case, mode, settings, narrator, metrics, out_dir)
                row["method"] = settings.label or mode
                handle.write(json.dumps(row) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
                scores = ", ".join(f"{k} {v:.3f}" for k, v in row["metrics"].items() if v is not None)
                log(f"[{number}/{len(todo)}] {case.id} {mode}: {scores}")
    summary = out_dir / "summary.json"
    write_atomically(summary, json.dumps(summarise(read_results(results)), indent=2) + "\n")
    return RunResult(len(todo), skipped, results, summary)


def _generate_and_score(pipe, case, mode, settings, narrator, metrics, out_dir) -> dict[str, Any]:
    import torch

    from ..media import load_image, save_video, write_together

    image = load_image(case.image)
    condition = image.resize((settings.width, settings.height))
    narration, source = None, None
    if mode in NARRATED_MODES:
        if narrator is None:
            narration, source = case.ground_truth_narration(settings.num_frames), "ground_truth"
        else:
            source = "narrator"
    seed = case_seed(case.id, settings.seed)
    start = time.perf_counter()
    from ..pipelines.narrated import generate

    output = generate(
        pipe, condition, case.prompt, narration=narration, narrator=narrator, mode=mode,
        negative_prompt=settings.negative_prompt, num_frames=settings.num_frames, height=settings.height,
        width=settings.width, num_inference_steps=settings.steps, guidance_scale=settings.guidance_scale,
        generator=torch.Generator(device="cpu").manual_seed(seed), output_type="np",
    )
    seconds = time.perf_counter() - start
    frames = to_uint8_frames(output.frames[0])
    video = Path("videos") / mode / f"{case.id}.{settings.video_format}"
    # renamed into place once whole: a failure (a full disk, a file-size limit) never leaves a video cut short
    write_together({out_dir / video: lambda path: save_video(frames.astype("float32") / 255.0, path, fps=settings.fps)})
    # Scored on the generated frames themselves; VBench decodes the mp4, which adds codec loss (see docs).
    sample = case_sample(case, frames, image, settings.fps)
    scores = {metric.name: finite_score(metric.score(sample), metric.name) for metric in metrics}
    used = output.narration
    return {
        "case_id": case.id, "mode": mode, "method": mode, "model": settings.model, "seed": seed,
        "video": str(video), "image": str(case.image), "image_key": image_key(image), "prompt": case.prompt,
        "prompt_used": output.prompt,
        "narration_source": source, "position_used": used.position if used is not None else None,
        "true_position": case.position, "num_frames": int(frames.shape[0]), "height": int(frames.shape[1]),
        "width": int(frames.shape[2]), "fps": settings.fps, "seconds": round(seconds, 3), "metrics": scores,
    }


def rescore_run(
    run_dir: str | Path,
    cases: Sequence[EvalCase],
    metrics: Sequence[Any],
    *,
    save_every: int = 25,
    log: Callable[[str], None] = lambda message: None,
) -> int:
    """Score `metrics` on a run's saved videos and add them to its rows; returns how many rows were scored.

    For a metric thought of after the run (or one whose weights arrived later): no video is generated again.
    A row gets only the metrics it lacks (scores it holds are never replaced), and the rows are rewritten
    atomically every `save_every` rows, so an interrupted rescore resumes. The scores come from the decoded
    videos (as VBench reads them), while `eval run` scores frames before encoding: give a whole run, not
    some of its rows, one source for a metric.
    """
    from ..media import load_image, write_together
    from .report import summarise

    run_dir = Path(run_dir)
    path = run_dir / RESULTS
    if not (run_dir / "run.json").is_file():
        raise ValueError(f"{run_dir} is not an `eval run` folder (no run.json)")
    run = json.loads((run_dir / "run.json").read_text())
    _read_done(path)  # cuts a torn last line, as a resumed run would
    rows = read_results(path)
    by_id = {case.id: case for case in cases}
    names = [metric.name for metric in metrics]
    todo = [row for row in rows if any(name not in row["metrics"] for name in names)]
    unknown = sorted({row["case_id"] for row in todo} - by_id.keys())
    if unknown:
        raise ValueError(f"{len(unknown)} case(s) of {path} are not in the manifest (first: {unknown[0]}): "
                         "pass the benchmark the run was made from")
    for number, row in enumerate(todo, start=1):
        case = by_id[row["case_id"]]
        sample = case_sample(case, read_video(run_dir / row["video"]), load_image(case.image), row["fps"])
        row["metrics"].update({metric.name: finite_score(metric.score(sample), metric.name) for metric in metrics
                               if metric.name not in row["metrics"]})
        if number % save_every == 0 and number < len(todo):  # the last save goes with run.json, below
            write_atomically(path, "".join(json.dumps(r) + "\n" for r in rows))
        scores = ", ".join(f"{name} {row['metrics'][name]:.3f}" for name in names
                           if row["metrics"][name] is not None)
        log(f"[{number}/{len(todo)}] {row['case_id']} {row['mode']}: {scores}")
    held = set(run.get("metrics") or []) | set(names)
    run["metrics"] = [name for name in METRICS if name in held]  # the order build_metrics uses, so runs resume
    run["measured_with"] = {**run.get("measured_with", {}), **measured_with(metrics)}
    texts = {run_dir / "run.json": json.dumps(run, indent=2) + "\n",
             run_dir / "summary.json": json.dumps(summarise(rows), indent=2) + "\n"}
    if todo:
        texts[path] = "".join(json.dumps(r) + "\n" for r in rows)
    # one set: rows that hold a metric and a run.json that names it (what a resumed `eval run` checks) go together
    write_together({final: (lambda p, text=text: p.write_text(text)) for final, text in texts.items()})
    return len(todo)
