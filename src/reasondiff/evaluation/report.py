"""`eval report`: Table 1's layout (mean ± std, best in bold, second underlined) as Markdown and CSV, and
Fig. 5a's ablation chart (each metric of each variant divided by the full model's) as PNG.

Standard deviations are population std (numpy's default, ddof=0) over cases; Dynamic Degree is per-video 0/1,
so its std is sqrt(p(1 − p)) as in the paper's Table 2. Best/second are decided on the values as printed
(rounded to `digits`), so equal-looking numbers get equal marks.

A std describes the cases, not how sure the mean is: `table_ci.md` gives each mean's bootstrap 95 % interval,
and `differences.md` each method's paired difference from a baseline (default: plain I2V, `wan`) with its
interval — the figure that says whether a gap is evidence. Where cases share an image (SynthWorld-Bench's
counterfactual split: four prompts per image) the intervals resample images, not cases (`stats`), from the
`image_key` each row records; both files end with a line saying which bootstrap was used, and `eval report`
prints it.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import HIGHER_IS_BETTER, METRICS, OPT_IN_METRICS
from .stats import bootstrap_ci, cluster_bootstrap_ci, paired_difference

COLUMNS = {**METRICS, "user_rank": "User Rank"}
DISPLAY_NAMES = {
    "reasondiff": "ReasonDiff",
    "wan": "Wan2.1",
    "rewrite": "Rewrite prompt",
    "no_enhanced_latents": "w/o Enhanced latents",
    "no_multi_prompt": "w/o Multi. prompt",
    "no_aux_loss": "w/o Aux. loss",  # a stage-1-only checkpoint, run with `eval run --label no_aux_loss`
    "static": "Static image (degenerate)",
    "hard_cut": "Hard cut (degenerate)",
    "truth_vae": "True clip through the VAE",
}
REFERENCE = "reasondiff"

Summary = dict[str, dict[str, dict[str, Any]]]  # method -> metric -> {"mean", "std", "ci95", "n"}


def stats(values: Sequence[float], clusters: Sequence | None = None) -> dict[str, Any]:
    """mean, population std, n and the bootstrap 95 % interval; with `clusters` (one per value: the case's
    image) the clustered bootstrap's interval, and `"clusters"`: how many images."""
    keep = [i for i, v in enumerate(values) if v is not None]
    array = np.asarray([values[i] for i in keep], dtype=np.float64)
    if array.size == 0:
        return {"mean": math.nan, "std": math.nan, "ci95": [math.nan, math.nan], "n": 0}
    entry = {"mean": float(array.mean()), "std": float(array.std()), "n": int(array.size)}
    if clusters is None:
        return {**entry, "ci95": list(bootstrap_ci(array))}
    groups = [clusters[i] for i in keep]
    return {**entry, "ci95": list(cluster_bootstrap_ci(array, groups)), "clusters": len(set(groups))}


def image_clusters(rows: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
    """case id -> the case's image (`image_key`, which `eval run` and `eval score` record), or None when some row
    has none (rows scored before the key was recorded): then intervals resample cases."""
    if not rows or any("image_key" not in row for row in rows):
        return None
    return {row["case_id"]: row["image_key"] for row in rows}


def summarise(rows: Sequence[Mapping[str, Any]]) -> Summary:
    """Mean ± std per method and metric over the result rows (methods in order of first appearance); intervals
    resample the cases' images when the rows name them (`image_clusters`: cases sharing an image move together)."""
    keys = image_clusters(rows)
    values: dict[str, dict[str, list[tuple[float, str]]]] = {}
    for row in rows:
        per_metric = values.setdefault(row.get("method", row["mode"]), {})
        for metric, value in row["metrics"].items():
            if value is not None:
                per_metric.setdefault(metric, []).append((value, row.get("case_id")))
    return {method: {metric: stats([v for v, _ in pairs], None if keys is None else [keys[c] for _, c in pairs])
                     for metric, pairs in per_metric.items()} for method, per_metric in values.items()}


def bootstrap_note(summary: Summary) -> str:
    """Which bootstrap the intervals used, in one line (`eval report` prints it; table_ci.md and differences.md
    end with it)."""
    entries = [e for metrics in summary.values() for e in metrics.values() if "ci95" in e and e.get("n")]
    clustered = [e for e in entries if "clusters" in e]
    if not clustered:
        return ("Intervals: bootstrap over cases (the rows name no image, so cases that share one count as "
                "independent; score them again with this version to cluster by image).")
    widest = max(clustered, key=lambda e: e["n"])
    shared = " (cases that share an image are resampled together)" if widest["clusters"] < widest["n"] else ""
    return (f"Intervals: clustered bootstrap over the cases' images, {widest['clusters']} images for "
            f"{widest['n']} cases{shared}.")


def add_user_rank(summary: Summary, user_rank: Mapping[str, Mapping[str, float]]) -> Summary:
    """Merge the study's mean rank ± std per method (see `study.store.aggregate`) into a summary."""
    merged = {method: dict(metrics) for method, metrics in summary.items()}
    for method, rank in user_rank.items():
        merged.setdefault(method, {})["user_rank"] = dict(rank)
    return merged


def method_order(summary: Summary, methods: Sequence[str] | None = None) -> list[str]:
    """`methods` as given (checked), or every method with the full model last, as in the paper's tables."""
    if methods:
        missing = [m for m in methods if m not in summary]
        if missing:
            raise ValueError(f"no results for method(s) {', '.join(missing)}; have {', '.join(summary)}")
        return list(methods)
    order = [m for m in summary if m != REFERENCE]
    return order + [REFERENCE] if REFERENCE in summary else order


def _marks(summary: Summary, methods: Sequence[str], metric: str, digits: int) -> dict[str, str]:
    """'best' / 'second' per method for one column, on the printed (rounded) means."""
    means = {m: round(summary[m][metric]["mean"], digits) for m in methods
             if metric in summary[m] and summary[m][metric]["n"] > 0}
    ranked = sorted(set(means.values()), reverse=HIGHER_IS_BETTER[metric])
    marks = {}
    for method, value in means.items():
        if value == ranked[0]:
            marks[method] = "best"
        elif len(ranked) > 1 and value == ranked[1]:
            marks[method] = "second"
    return marks


def _columns(summary: Summary, methods: Sequence[str]) -> dict[str, str]:
    """Table 1's columns always; the opt-in ones (Sharpness, the SynthWorld judge's) only when some method has them."""
    return {key: label for key, label in COLUMNS.items()
            if key not in OPT_IN_METRICS or any(summary[m].get(key, {}).get("n") for m in methods)}


def markdown_table(summary: Summary, methods: Sequence[str] | None = None, digits: int = 3) -> str:
    """Table 1: one row per model, `mean ± std` per metric, best **bold**, second <u>underlined</u>, – if absent."""
    methods = method_order(summary, methods)
    columns = _columns(summary, methods)
    arrows = {key: "↑" if HIGHER_IS_BETTER[key] else "↓" for key in columns}
    lines = ["| Model | " + " | ".join(f"{label}({arrows[key]})" for key, label in columns.items()) + " |",
             "|---|" + "---:|" * len(columns)]
    marks = {key: _marks(summary, methods, key, digits) for key in columns}
    for method in methods:
        cells = []
        for key in columns:
            entry = summary[method].get(key)
            if entry is None or entry["n"] == 0:
                cells.append("–")
                continue
            text = f"{entry['mean']:.{digits}f} ± {entry['std']:.{digits}f}"
            mark = marks[key].get(method)
            cells.append(f"**{text}**" if mark == "best" else f"<u>{text}</u>" if mark == "second" else text)
        lines.append(f"| {DISPLAY_NAMES.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def interval_table(summary: Summary, methods: Sequence[str] | None = None, digits: int = 3) -> str:
    """Each mean with its bootstrap 95 % interval, `mean [lo, hi]`, one row per method (measured columns only)."""
    methods = method_order(summary, methods)
    columns = {key: label for key, label in _columns(summary, methods).items()
               if any(summary[m].get(key, {}).get("n") for m in methods)}
    lines = ["| Model | " + " | ".join(f"{label}({'↑' if HIGHER_IS_BETTER[key] else '↓'})"
                                      for key, label in columns.items()) + " | n |",
             "|---|" + "---:|" * (len(columns) + 1)]
    for method in methods:
        cells, count = [], 0
        for key in columns:
            entry = summary[method].get(key)
            if entry is None or entry["n"] == 0 or "ci95" not in entry:
                cells.append("–")
                continue
            low, high = entry["ci95"]
            cells.append(f"{entry['mean']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]")
            count = max(count, entry["n"])
        lines.append(f"| {DISPLAY_NAMES.get(method, method)} | " + " | ".join(cells) + f" | {count} |")
    return "\n".join(lines) + "\n"


def differences(rows: Sequence[Mapping[str, Any]], baseline: str) -> dict[str, dict[str, dict[str, Any]]]:
    """method -> metric -> paired difference from `baseline` over the cases both have (`stats.paired_difference`;
    clustered by image when the rows name the images)."""
    keys = image_clusters(rows)
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for row in rows:
        per_metric = scores.setdefault(row.get("method", row["mode"]), {})
        for metric, value in row["metrics"].items():
            per_metric.setdefault(metric, {})[row["case_id"]] = value
    if baseline not in scores:
        raise ValueError(f"no results for the baseline {baseline!r}; have {', '.join(scores)}")
    return {method: {metric: paired_difference(values, scores[baseline].get(metric, {}), clusters=keys)
                     for metric, values in per_metric.items() if metric in scores[baseline]}
            for method, per_metric in scores.items() if method != baseline}


def differences_table(diffs: Mapping[str, Mapping[str, Mapping[str, Any]]], baseline: str, digits: int = 3) -> str:
    """`method − baseline [lo, hi]` per metric; ✓ marks an interval that excludes 0."""
    keys = [k for k in METRICS if any(k in d for d in diffs.values())]
    lines = [f"| Model − {DISPLAY_NAMES.get(baseline, baseline)} | " + " | ".join(METRICS[k] for k in keys) + " |",
             "|---|" + "---:|" * len(keys)]
    for method, per_metric in diffs.items():
        cells = []
        for key in keys:
            entry = per_metric.get(key)
            if entry is None or entry["n"] == 0:
                cells.append("–")
                continue
            low, high = entry["ci95"]
            mark = " ✓" if low > 0 or high < 0 else ""
            cells.append(f"{entry['mean']:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]{mark}")
        lines.append(f"| {DISPLAY_NAMES.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(summary: Summary, methods: Sequence[str] | None = None) -> str:
    """The same numbers unrounded: model, method, then mean/std/n per metric (empty when absent)."""
    methods = method_order(summary, methods)
    columns = _columns(summary, methods)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    parts = ("mean", "std", "n", "ci_low", "ci_high")
    writer.writerow(["model", "method"] + [f"{key}_{part}" for key in columns for part in parts])
    for method in methods:
        row = [DISPLAY_NAMES.get(method, method), method]
        for key in columns:
            row += _csv_cells(summary[method].get(key))
        writer.writerow(row)
    return buffer.getvalue()


def _csv_cells(entry: Mapping[str, Any] | None) -> list:
    """mean, std, n, ci_low, ci_high of one cell (the study's User Rank has no interval: empty)."""
    if entry is None:
        return ["", "", 0, "", ""]
    interval = [f"{bound:.6f}" for bound in entry["ci95"]] if "ci95" in entry else ["", ""]
    return [f"{entry['mean']:.6f}", f"{entry['std']:.6f}", entry["n"], *interval]


def ablation_ratios(summary: Summary, reference: str = REFERENCE,
                    variants: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Fig. 5a's numbers: variant mean / reference mean per automatic metric both have."""
    if reference not in summary:
        raise ValueError(f"the ablation chart needs results for the full model {reference!r}; have {', '.join(summary)}")
    variants = [m for m in (variants or summary) if m != reference]
    if not variants:
        raise ValueError("the ablation chart needs at least one variant besides the full model")
    ratios = {}
    for variant in variants:
        ratios[variant] = {}
        for key in METRICS:
            ref, var = summary[reference].get(key), summary[variant].get(key)
            if ref and var and ref["n"] and var["n"] and ref["mean"] != 0:
                ratios[variant][key] = var["mean"] / ref["mean"]
    return ratios


def ablation_chart(ratios: Mapping[str, Mapping[str, float]], path: str | Path, reference: str = REFERENCE) -> Path:
    """Grouped bars, one group per metric, one bar per variant, the full model at 1.0 (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in METRICS if any(k in r for r in ratios.values())]
    if not keys:
        raise ValueError("no metric is shared by the full model and its variants")
    width = 0.8 / max(1, len(ratios))
    fig, ax = plt.subplots(figsize=(1.6 * len(keys) + 2, 3.6), dpi=150)
    for i, (variant, values) in enumerate(ratios.items()):
        xs = [j + (i - (len(ratios) - 1) / 2) * width for j in range(len(keys))]
        ax.bar(xs, [values.get(k, np.nan) for k in keys], width, label=DISPLAY_NAMES.get(variant, variant))
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label=f"{DISPLAY_NAMES.get(reference, reference)} = 1")
    ax.set_xticks(range(len(keys)), [METRICS[k] for k in keys], rotation=15)
    ax.set_ylabel(f"relative to {DISPLAY_NAMES.get(reference, reference)}")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


REPORT_FILES = {"markdown": "table.md", "intervals": "table_ci.md", "csv": "table.csv",
                "differences": "differences.md", "ablation_csv": "ablation.csv", "ablation_png": "ablation.png"}


def write_report(summary: Summary, out_dir: str | Path, methods: Sequence[str] | None = None,
                 reference: str = REFERENCE, digits: int = 3, rows: Sequence[Mapping[str, Any]] | None = None,
                 baseline: str = "wan") -> dict[str, Path]:
    """table.md, table_ci.md, table.csv; differences.md when `rows` include the `baseline`; and, when the full
    model and a variant are present, ablation.csv + ablation.png. Placed as one set (`media.write_together`):
    every path is checked first (ValueError), a failure leaves the previous report whole (OSError), and files of
    the previous report this one lacks (its chart, its differences) go with it, so tables and chart always agree."""
    from ..media import check_outputs, write_together

    out_dir = Path(out_dir)
    check_outputs(*(out_dir / name for name in REPORT_FILES.values()))
    note = "\n" + bootstrap_note(summary) + "\n"
    texts = {"markdown": markdown_table(summary, methods, digits),
             "intervals": interval_table(summary, methods, digits) + note, "csv": csv_table(summary, methods)}
    if rows is not None and any(row.get("method", row["mode"]) == baseline for row in rows):
        texts["differences"] = differences_table(differences(rows, baseline), baseline, digits) + note
    variants = [m for m in (methods or summary) if m != reference]
    ratios = ablation_ratios(summary, reference, variants) if reference in summary and variants else None
    if ratios is not None:
        keys = [k for k in METRICS if k not in OPT_IN_METRICS or any(k in r for r in ratios.values())]
        lines = ["variant," + ",".join(keys)]
        lines += [variant + "," + ",".join(f"{r[k]:.6f}" if k in r else "" for k in keys)
                  for variant, r in ratios.items()]
        texts["ablation_csv"] = "\n".join(lines) + "\n"
    written = {key: out_dir / REPORT_FILES[key] for key in texts}
    writers = {written[key]: (lambda path, text=text: path.write_text(text)) for key, text in texts.items()}
    if ratios is not None:
        written["ablation_png"] = out_dir / REPORT_FILES["ablation_png"]
        writers[written["ablation_png"]] = lambda path: ablation_chart(ratios, path, reference)
    write_together(writers, drop=[out_dir / name for name in REPORT_FILES.values()])
    return written
